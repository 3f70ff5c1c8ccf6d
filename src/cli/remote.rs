//! The remote cache and execution flags (`--remote_cache`, `--remote_executor`,
//! `--remote_header`, `--remote_instance_name`, `--remote_timeout`,
//! `--[no]remote_upload_local_results`, `--[no]remote_accept_cached`,
//! `--remote_local_fallback`, `--remote_default_exec_properties`, `--remote_download_*`) in, the one `RemoteCache`
//! client of this command (or none) and the remote execution settings out.

use std::sync::{Arc, Mutex};

use clap::Args;

use crate::core::Failure;
use crate::exec::remote_outputs::DownloadMode;
use crate::exec::remote_runner::RemoteExecSpec;
use crate::remote::{RemoteCache, RemoteSpec, parse_timeout};

#[derive(Args, Debug, Clone, Default)]
pub struct RemoteOptions {
    /// A shared cache: `http(s)://[user:password@]host[:port][/prefix]` (Bazel's HTTP cache
    /// protocol) or `grpc(s)://host:port` (the Remote Execution API's cache services).
    #[arg(long = "remote_cache", alias = "remote-cache", value_name = "URL")]
    pub remote_cache: Option<String>,

    /// Execute actions on an REAPI server: `grpc(s)://host:port`. It is also the remote
    /// cache unless --remote_cache names another.
    #[arg(
        long = "remote_executor",
        alias = "remote-executor",
        value_name = "URL"
    )]
    pub remote_executor: Option<String>,

    /// Run an action locally when the remote executor cannot be reached.
    #[arg(
        long = "remote_local_fallback",
        alias = "remote-local-fallback",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub remote_local_fallback: Option<bool>,

    /// A platform property of every remotely executed action: `NAME=VALUE`.
    #[arg(
        long = "remote_default_exec_properties",
        alias = "remote-default-exec-properties",
        value_name = "NAME=VALUE"
    )]
    pub remote_default_exec_properties: Vec<String>,

    /// A header sent with every remote cache request: `NAME=VALUE`.
    #[arg(
        long = "remote_header",
        aliases = ["remote-header", "remote_cache_header", "remote-cache-header"],
        value_name = "NAME=VALUE"
    )]
    pub remote_header: Vec<String>,

    /// The instance name sent to a gRPC remote cache.
    #[arg(
        long = "remote_instance_name",
        alias = "remote-instance-name",
        value_name = "NAME"
    )]
    pub remote_instance_name: Option<String>,

    /// How long to wait for the remote cache (connecting, and each request): seconds, or
    /// `500ms`, `10s`, `1m`. Default 60.
    #[arg(
        long = "remote_timeout",
        alias = "remote-timeout",
        value_name = "SECONDS"
    )]
    pub remote_timeout: Option<String>,

    /// Upload the results of locally run actions and tests (default true).
    #[arg(
        long = "remote_upload_local_results",
        alias = "remote-upload-local-results",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub remote_upload_local_results: Option<bool>,

    /// Do not upload local results.
    #[arg(
        long = "noremote_upload_local_results",
        alias = "noremote-upload-local-results"
    )]
    pub noremote_upload_local_results: bool,

    /// Use results found in the remote cache (default true).
    #[arg(
        long = "remote_accept_cached",
        alias = "remote-accept-cached",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub remote_accept_cached: Option<bool>,

    /// Do not use results found in the remote cache (still upload).
    #[arg(long = "noremote_accept_cached", alias = "noremote-accept-cached")]
    pub noremote_accept_cached: bool,

    /// What to download of the outputs executed or found cached remotely: `all`,
    /// `toplevel` (the requested targets' outputs) or `minimal` (only what runs here needs).
    /// The last of this flag and its two shorthands wins.
    #[arg(
        long = "remote_download_outputs",
        alias = "remote-download-outputs",
        value_name = "all|toplevel|minimal",
        overrides_with_all = ["remote_download_minimal", "remote_download_toplevel"]
    )]
    pub remote_download_outputs: Option<String>,

    /// Build without the bytes: leave every output remote, fetch only what a local command
    /// or `forge run` needs (`--remote_download_outputs=minimal`).
    #[arg(
        long = "remote_download_minimal",
        alias = "remote-download-minimal",
        overrides_with_all = ["remote_download_outputs", "remote_download_toplevel"]
    )]
    pub remote_download_minimal: bool,

    /// Download only the outputs of the targets asked for
    /// (`--remote_download_outputs=toplevel`).
    #[arg(
        long = "remote_download_toplevel",
        alias = "remote-download-toplevel",
        overrides_with_all = ["remote_download_outputs", "remote_download_minimal"]
    )]
    pub remote_download_toplevel: bool,
}

/// The client of this process: `forge test` builds and then tests with one client, so a
/// server that failed during the build is reported once and not asked again for tests.
static CLIENT: Mutex<Option<Arc<RemoteCache>>> = Mutex::new(None);

impl RemoteOptions {
    /// The remote cache these flags ask for, if any; a bad flag is a usage error.
    pub fn client(&self) -> Result<Option<Arc<RemoteCache>>, Failure> {
        let executor = self.remote_executor.as_deref().filter(|u| !u.is_empty());
        let Some(url) = self
            .remote_cache
            .as_deref()
            .filter(|u| !u.is_empty())
            .or(executor)
        else {
            return Ok(None);
        };
        let spec = self.spec(url)?;
        let mut client = CLIENT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = client.as_ref() {
            return Ok(Some(c.clone()));
        }
        let made = Arc::new(RemoteCache::new(spec).map_err(|e| Failure::usage(e.to_string()))?);
        *client = Some(made.clone());
        Ok(Some(made))
    }

    /// What to download of remote outputs (`--remote_download_*`). Leaving outputs remote
    /// needs them in the CAS that is also the cache: a `--remote_cache` other than the
    /// `--remote_executor` is refused with it.
    pub fn download_mode(&self) -> Result<DownloadMode, Failure> {
        let mode = if self.remote_download_minimal {
            DownloadMode::Minimal
        } else if self.remote_download_toplevel {
            DownloadMode::Toplevel
        } else {
            match self.remote_download_outputs.as_deref() {
                None => DownloadMode::All,
                Some(value) => DownloadMode::parse(value).ok_or_else(|| {
                    Failure::usage(format!(
                        "--remote_download_outputs expects all, toplevel or minimal, not '{value}'"
                    ))
                })?,
            }
        };
        let executor = self.remote_executor.as_deref().filter(|u| !u.is_empty());
        let cache = self.remote_cache.as_deref().filter(|u| !u.is_empty());
        if mode != DownloadMode::All
            && let (Some(executor), Some(cache)) = (executor, cache)
            && executor != cache
        {
            return Err(Failure::usage(format!(
                "forge does not support --remote_download_{} with a --remote_cache ({cache}) \
                 other than the --remote_executor ({executor}) yet: the outputs stay in the \
                 executor's CAS",
                match mode {
                    DownloadMode::Minimal => "minimal",
                    _ => "toplevel",
                }
            )));
        }
        Ok(mode)
    }

    /// The remote execution settings, when `--remote_executor` is given.
    pub fn execution(&self) -> Result<Option<RemoteExecSpec>, Failure> {
        let Some(url) = self.remote_executor.as_deref().filter(|u| !u.is_empty()) else {
            if !self.remote_default_exec_properties.is_empty() {
                return Err(Failure::usage(
                    "--remote_default_exec_properties needs --remote_executor",
                ));
            }
            return Ok(None);
        };
        if !(url.starts_with("grpc://") || url.starts_with("grpcs://")) {
            return Err(Failure::usage(format!(
                "--remote_executor expects a grpc:// or grpcs:// URL, not '{url}'"
            )));
        }
        // The URL's form is checked as a cache's is.
        RemoteCache::new(self.spec(url)?).map_err(|e| {
            Failure::usage(e.to_string().replace("--remote_cache", "--remote_executor"))
        })?;
        let mut platform = Vec::new();
        for item in &self.remote_default_exec_properties {
            match item.split_once('=') {
                Some((name, value)) if !name.is_empty() => {
                    platform.push((name.to_owned(), value.to_owned()));
                }
                _ => {
                    return Err(Failure::usage(format!(
                        "--remote_default_exec_properties expects NAME=VALUE, got '{item}'"
                    )));
                }
            }
        }
        Ok(Some(RemoteExecSpec {
            spec: self.spec(url)?,
            local_fallback: self.remote_local_fallback.unwrap_or(false),
            platform,
        }))
    }

    fn spec(&self, url: &str) -> Result<RemoteSpec, Failure> {
        let mut headers = Vec::new();
        for item in &self.remote_header {
            match item.split_once('=') {
                Some((name, value)) if !name.is_empty() => {
                    headers.push((name.to_owned(), value.to_owned()));
                }
                _ => {
                    return Err(Failure::usage(format!(
                        "--remote_header expects NAME=VALUE, got '{item}'"
                    )));
                }
            }
        }
        let timeout = match &self.remote_timeout {
            None => std::time::Duration::from_secs(60),
            Some(text) => parse_timeout(text).ok_or_else(|| {
                Failure::usage(format!(
                    "--remote_timeout expects a positive number of seconds (or 500ms, 10s, 1m), not '{text}'"
                ))
            })?,
        };
        Ok(RemoteSpec {
            url: url.to_owned(),
            headers,
            instance_name: self.remote_instance_name.clone().unwrap_or_default(),
            timeout,
            upload: !self.noremote_upload_local_results
                && self.remote_upload_local_results.unwrap_or(true),
            accept: !self.noremote_accept_cached && self.remote_accept_cached.unwrap_or(true),
        })
    }
}
