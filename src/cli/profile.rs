//! `--profile=FILE`: when each phase and each action ran, recorded while the command runs,
//! written as a Chrome trace (the Trace Event JSON format chrome://tracing and Perfetto
//! open): each phase a complete event on the main thread, each executed action a complete
//! event on the worker thread that ran it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::Instant;

use serde_json::json;

use crate::core::{Action, Failure};
use crate::exec::{ActionOutcome, Progress};

/// One stretch of time on one thread.
struct Span {
    name: String,
    category: &'static str,
    start: Instant,
    end: Instant,
    /// 0 is the command's main thread; workers count from 1.
    thread: usize,
    args: serde_json::Value,
}

#[derive(Default)]
struct Record {
    spans: Vec<Span>,
    /// Worker threads in the order they first ran an action.
    workers: Vec<ThreadId>,
    /// Running actions by address: when they started, on which thread.
    running: HashMap<usize, (Instant, usize)>,
}

/// The profile of one command, written by `write` at its end.
pub struct Profile {
    path: PathBuf,
    origin: Instant,
    record: Mutex<Record>,
}

impl Profile {
    /// A profile whose times count from `origin` (the command's start).
    pub fn new(path: &Path, origin: Instant) -> Profile {
        Profile {
            path: path.to_path_buf(),
            origin,
            record: Mutex::new(Record::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A phase of the command (loading, analysis, execution, tests) on the main thread.
    pub fn phase(&self, name: &str, start: Instant, end: Instant) {
        self.lock().spans.push(Span {
            name: name.to_owned(),
            category: "build phase marker",
            start,
            end,
            thread: 0,
            args: json!({}),
        });
    }

    /// The trace: metadata naming the process and threads, then the spans by start time.
    fn trace(&self) -> serde_json::Value {
        let record = self.lock();
        let micros = |t: Instant| t.saturating_duration_since(self.origin).as_micros() as u64;
        let mut events = vec![
            json!({"name": "process_name", "ph": "M", "pid": 1, "tid": 0,
                   "args": {"name": "forge"}}),
            json!({"name": "thread_name", "ph": "M", "pid": 1, "tid": 0,
                   "args": {"name": "main"}}),
        ];
        for n in 1..=record.workers.len() {
            events.push(json!({"name": "thread_name", "ph": "M", "pid": 1, "tid": n,
                               "args": {"name": format!("worker {n}")}}));
        }
        let mut spans: Vec<&Span> = record.spans.iter().collect();
        spans.sort_by_key(|s| (s.start, s.thread));
        for span in spans {
            events.push(json!({
                "name": span.name,
                "cat": span.category,
                "ph": "X",
                "ts": micros(span.start),
                "dur": micros(span.end).saturating_sub(micros(span.start)),
                "pid": 1,
                "tid": span.thread,
                "args": span.args,
            }));
        }
        json!({
            "otherData": {"build_tool": "forge", "version": env!("CARGO_PKG_VERSION")},
            "displayTimeUnit": "ms",
            "traceEvents": events,
        })
    }

    /// Writes the trace to the file `--profile` names.
    pub fn write(&self) -> Result<(), Failure> {
        let text = serde_json::to_vec(&self.trace()).unwrap_or_default();
        crate::core::fs::write_atomic(&self.path, &text).map_err(|e| {
            Failure::failed(format!(
                "cannot write the profile {}: {e}",
                self.path.display()
            ))
        })
    }
}

/// Progress that records each executed action in the profile and passes every event on.
pub struct Recording<'a> {
    pub inner: &'a dyn Progress,
    pub profile: &'a Profile,
}

fn address(action: &Action) -> usize {
    action as *const Action as usize
}

impl Progress for Recording<'_> {
    fn begin(&self, total: usize) {
        self.inner.begin(total);
    }

    fn started(&self, action: &Action) {
        {
            let mut record = self.profile.lock();
            let me = std::thread::current().id();
            let thread = match record.workers.iter().position(|t| *t == me) {
                Some(i) => i + 1,
                None => {
                    record.workers.push(me);
                    record.workers.len()
                }
            };
            record
                .running
                .insert(address(action), (Instant::now(), thread));
        }
        self.inner.started(action);
    }

    fn command(
        &self,
        action: &Action,
        argv: &[String],
        env: &std::collections::BTreeMap<String, String>,
        exec_root: &Path,
    ) {
        self.inner.command(action, argv, env, exec_root);
    }

    fn finished(&self, action: &Action, outcome: &ActionOutcome<'_>) {
        {
            let mut record = self.profile.lock();
            if let Some((start, thread)) = record.running.remove(&address(action)) {
                let failed = matches!(outcome, ActionOutcome::Failed(_));
                record.spans.push(Span {
                    name: action.progress_message.clone(),
                    category: "action processing",
                    start,
                    end: Instant::now(),
                    thread,
                    args: json!({
                        "target": action.owner.to_string(),
                        "mnemonic": action.mnemonic,
                        "failed": failed,
                    }),
                });
            }
        }
        self.inner.finished(action, outcome);
    }

    fn tick(&self) {
        self.inner.tick();
    }

    fn message(&self, text: &str) {
        self.inner.message(text);
    }

    fn end(&self) {
        self.inner.end();
    }
}
