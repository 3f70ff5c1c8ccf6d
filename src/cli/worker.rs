//! `forge worker`: the server, instance and slot count in; a Remote Workers API bot running
//! until killed (`ops::worker`) out.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use clap::Args;

use crate::core::{ExitCode, Failure};
use crate::ops::worker::{self, WorkerOptions};
use crate::remote::parse_timeout;

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The REAPI server to take work from: `grpc://host:port` or `grpcs://host:port`.
    #[arg(long = "server", value_name = "URL")]
    pub server: String,

    /// The server's instance name.
    #[arg(
        long = "instance",
        alias = "instance_name",
        value_name = "NAME",
        default_value = ""
    )]
    pub instance: String,

    /// How many actions run at once (the bot's capacity). Default: the number of cores.
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = super::parse_jobs)]
    pub jobs: Option<usize>,

    /// Where the blob cache and the actions' input roots live. Default:
    /// `~/.cache/forge/worker`.
    #[arg(long = "work_dir", alias = "work-dir", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// The limit of each request to the server (not of the actions): seconds, or 500ms,
    /// 10s, 1m. Default 60.
    #[arg(
        long = "remote_timeout",
        alias = "remote-timeout",
        value_name = "SECONDS"
    )]
    pub remote_timeout: Option<String>,

    /// A header sent with every request: `NAME=VALUE`.
    #[arg(
        long = "remote_header",
        alias = "remote-header",
        value_name = "NAME=VALUE"
    )]
    pub remote_header: Vec<String>,
}

pub fn run(args: WorkerArgs) -> Result<ExitCode, Failure> {
    if !(args.server.starts_with("grpc://") || args.server.starts_with("grpcs://")) {
        return Err(Failure::usage(format!(
            "--server expects a grpc:// or grpcs:// URL, not '{}'",
            args.server
        )));
    }
    let timeout = match &args.remote_timeout {
        None => std::time::Duration::from_secs(60),
        Some(t) => parse_timeout(t).ok_or_else(|| {
            Failure::usage(format!("--remote_timeout expects seconds, not '{t}'"))
        })?,
    };
    let mut headers = Vec::new();
    for item in &args.remote_header {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => headers.push((k.to_owned(), v.to_owned())),
            _ => {
                return Err(Failure::usage(format!(
                    "--remote_header expects NAME=VALUE, got '{item}'"
                )));
            }
        }
    }
    let work_dir = match args.work_dir {
        Some(d) => d,
        None => dirs::cache_dir()
            .ok_or_else(|| Failure::usage("no cache directory: pass --work_dir"))?
            .join("forge/worker"),
    };
    let options = WorkerOptions {
        server: args.server,
        instance: args.instance,
        jobs: args.jobs.unwrap_or_else(super::host_cores),
        work_dir,
        timeout,
        headers,
    };
    let stop = AtomicBool::new(false);
    worker::run(&options, &stop)?;
    Ok(ExitCode::Success)
}
