//! `forge worker`: a bot of an REAPI server's Remote Workers API. The server's address,
//! instance and number of slots in; a session held open for as long as the process lives
//! out — leases taken (`UpdateBotSession`), each run in forge's sandbox in a slot of its own
//! (`lease`), its result reported as the lease completes. When the server goes away the
//! worker keeps trying to reach it and opens a new session once it is back.

mod blobs;
mod lease;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::core::Failure;
use crate::exec::runner::Cancel;
use crate::exec::sandbox::{self, SandboxConfig, SandboxRunner};
use crate::remote::bots::{self, BotSession, BotStatus, LeaseState};
use crate::remote::execution::Reapi;
use crate::remote::{RemoteSpec, proto};

/// What `forge worker` was asked to do.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// `grpc://host:port` of the server.
    pub server: String,
    pub instance: String,
    /// How many actions run at once.
    pub jobs: usize,
    /// Where slots and the blob cache live.
    pub work_dir: PathBuf,
    /// Each request's time limit (connecting, the CAS); the long poll has its own.
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
}

/// How long the server may hold a poll waiting for work for us.
const POLL: Duration = Duration::from_secs(10);
/// How long to wait before trying an unreachable server again.
const RETRY: Duration = Duration::from_millis(500);

/// A finished lease, from a slot thread to the session loop.
struct Finished {
    lease_id: String,
    outcome: lease::Outcome,
}

/// Runs the worker until `stop` is set (or forever).
pub fn run(options: &WorkerOptions, stop: &AtomicBool) -> Result<(), Failure> {
    let jobs = options.jobs.max(1);
    let bot_id = format!(
        "forge-worker-{}-{}",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default(),
        std::process::id()
    );
    std::fs::create_dir_all(&options.work_dir).map_err(|e| {
        Failure::failed(format!(
            "cannot create the work directory {}: {e}",
            options.work_dir.display()
        ))
    })?;
    let cache = Arc::new(
        blobs::BlobCache::open(&options.work_dir.join("cas"))
            .map_err(|e| Failure::failed(format!("cannot create the blob cache: {e}")))?,
    );
    // Each slot is a directory of its own, where one action at a time runs.
    let mut slots = Vec::with_capacity(jobs);
    for i in 0..jobs {
        let base = options.work_dir.join(format!("slot-{i}"));
        std::fs::create_dir_all(&base)
            .map_err(|e| Failure::failed(format!("cannot create {}: {e}", base.display())))?;
        slots.push(Arc::new(base));
    }
    let probe = SandboxRunner::new(
        SandboxConfig {
            exec_root: slots[0].join("execroot"),
            workspace_name: "remote".into(),
            roots_dir: sandbox::roots_dir(&slots[0]),
            ..SandboxConfig::default()
        },
        Default::default(),
        true,
    );
    let unavailable = probe.probe();
    probe.cleanup();
    if let Some(why) = unavailable {
        return Err(Failure::failed(format!(
            "forge worker runs actions in forge's sandbox, which cannot run here: {why}"
        )));
    }
    let spec = RemoteSpec {
        url: options.server.clone(),
        headers: options.headers.clone(),
        instance_name: options.instance.clone(),
        timeout: options.timeout,
        upload: true,
        accept: true,
    };
    // Slots outlive sessions: an action still running when its session was lost keeps its
    // slot until it ends, whatever session comes next.
    let free: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new((0..jobs).rev().collect()));
    let mut said_waiting = false;
    while !stop.load(Ordering::Relaxed) {
        let reapi = match Reapi::connect(&spec, false) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                if !said_waiting {
                    eprintln!("forge worker: waiting for {} ({e})", options.server);
                    said_waiting = true;
                }
                std::thread::sleep(RETRY);
                continue;
            }
        };
        said_waiting = false;
        match session(&reapi, &bot_id, &slots, &free, &cache, stop) {
            Ok(()) => break,
            Err(e) => {
                eprintln!(
                    "forge worker: lost the session with {}: {e}",
                    options.server
                );
                std::thread::sleep(RETRY);
            }
        }
    }
    Ok(())
}

/// One bot session: created, then updated until the server fails or `stop` is set.
fn session(
    reapi: &Arc<Reapi>,
    bot_id: &str,
    slots: &[Arc<PathBuf>],
    free: &Arc<Mutex<Vec<usize>>>,
    cache: &Arc<blobs::BlobCache>,
    stop: &AtomicBool,
) -> Result<(), crate::remote::RemoteError> {
    let isa = match std::env::consts::ARCH {
        "x86_64" => "x86-64",
        other => other,
    };
    let property = |key: &str, value: &str| bots::Property {
        key: key.to_owned(),
        value: value.to_owned(),
    };
    let mut current = reapi.create_bot_session(BotSession {
        bot_id: bot_id.to_owned(),
        status: BotStatus::Ok as i32,
        worker: Some(bots::Worker {
            devices: vec![bots::Device {
                handle: bot_id.to_owned(),
                properties: vec![property("OSFamily", "linux"), property("ISA", isa)],
            }],
            properties: vec![],
            configs: vec![property("capacity", &slots.len().to_string())],
        }),
        ..Default::default()
    })?;
    eprintln!(
        "forge worker: session {} with {} ({} slots)",
        current.name,
        reapi.url(),
        slots.len()
    );
    let (done_tx, done_rx) = mpsc::channel::<Finished>();
    let wake = Arc::new(tokio::sync::Notify::new());
    // Lease id -> its cancel.
    let mut running: HashMap<String, Arc<Cancel>> = HashMap::new();
    // Completed leases not yet acknowledged by the server.
    let mut completed: HashMap<String, bots::Lease> = HashMap::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        while let Ok(f) = done_rx.try_recv() {
            if running.remove(&f.lease_id).is_some() {
                completed.insert(
                    f.lease_id.clone(),
                    bots::Lease {
                        id: f.lease_id,
                        state: LeaseState::Completed as i32,
                        status: Some(f.outcome.status),
                        result: f.outcome.result.as_ref().map(lease::pack_result),
                        ..Default::default()
                    },
                );
            }
        }
        // What we tell the server: each lease as we see it.
        let mut session = current.clone();
        session.status = BotStatus::Ok as i32;
        session.leases = current
            .leases
            .iter()
            .filter(|l| !completed.contains_key(&l.id))
            .cloned()
            .chain(completed.values().cloned())
            .collect();
        let notified = wake.clone();
        let interrupt = async move { notified.notified().await };
        let poll = if completed.is_empty() {
            POLL
        } else {
            Duration::from_secs(4)
        };
        let Some(answer) = reapi.update_bot_session(session, poll, interrupt)? else {
            continue;
        };
        // The server has taken every completion it does not list again.
        completed.retain(|id, _| answer.leases.iter().any(|l| &l.id == id));
        for l in &answer.leases {
            let state = l.state;
            if state == LeaseState::Cancelled as i32 {
                if let Some(cancel) = running.get(&l.id) {
                    cancel.cancel();
                }
                continue;
            }
            if state != LeaseState::Active as i32 && state != LeaseState::Pending as i32 {
                continue;
            }
            if running.contains_key(&l.id) || completed.contains_key(&l.id) {
                continue;
            }
            let Some(slot) = free.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                continue;
            };
            let cancel = Arc::new(Cancel::new());
            running.insert(l.id.clone(), cancel.clone());
            let (reapi, cache, slot_ref) = (reapi.clone(), cache.clone(), slots[slot].clone());
            let (tx, wake, id, payload) = (
                done_tx.clone(),
                wake.clone(),
                l.id.clone(),
                l.payload.clone(),
            );
            let worker_name = bot_id.to_owned();
            let free = Arc::clone(free);
            std::thread::spawn(move || {
                let outcome = match payload
                    .ok_or_else(|| crate::remote::RemoteError("the lease has no payload".into()))
                    .and_then(|p| lease::action_of(&reapi, &p))
                {
                    Ok(action) => {
                        lease::run(&reapi, &cache, &slot_ref, &action, &worker_name, &cancel)
                    }
                    Err(e) => lease::Outcome {
                        status: proto::Status {
                            code: lease::CODE_FAILED_PRECONDITION,
                            message: e.to_string(),
                            details: vec![],
                        },
                        result: None,
                    },
                };
                free.lock().unwrap_or_else(|e| e.into_inner()).push(slot);
                // The session may be gone (the server restarted): then so is the lease.
                let _ = tx.send(Finished {
                    lease_id: id,
                    outcome,
                });
                wake.notify_one();
            });
        }
        current = answer;
    }
}
