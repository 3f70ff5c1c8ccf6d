//! Repository rules in the WORKSPACE file: `http_archive` (and `new_http_archive`, the same
//! rule), `http_file`, `http_jar`, `local_repository`, `new_local_repository`,
//! `git_repository` and `new_git_repository` calls in; one plain `RepoRule` per external
//! repository out, with where it was declared. Nothing is fetched here (see `fetch`): only
//! repositories a command needs are (a git repository is refused then: forge reaches no
//! network).

// The Starlark signatures mirror Bazel's repository rules, with all their keyword arguments.
#![allow(clippy::too_many_arguments)]

use std::collections::BTreeMap;

use serde::Serialize;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::dict::DictRef;
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::none::NoneType;

use super::evaluate::WorkspaceContext;
use super::label::label_text;

/// What kind of repository, with the attributes that kind has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum RepoKind {
    /// `http_archive` / `new_http_archive`.
    Archive {
        urls: Vec<String>,
        sha256: Option<String>,
        strip_prefix: String,
        add_prefix: String,
        /// `tar.gz`, `zip`, ... when the URL does not say.
        archive_type: Option<String>,
        patches: Vec<String>,
        patch_args: Vec<String>,
    },
    /// `http_file`: one downloaded file, as `@name//file`.
    File {
        urls: Vec<String>,
        sha256: Option<String>,
        downloaded_file_path: String,
        executable: bool,
    },
    /// `http_jar`: one downloaded jar, as `@name//jar:file`.
    Jar {
        urls: Vec<String>,
        sha256: Option<String>,
        downloaded_file_name: String,
    },
    /// `local_repository` / `new_local_repository`: a directory on this machine.
    Local { path: String },
    /// `git_repository` / `new_git_repository`: declared, refused when fetched.
    Git {
        remote: String,
        commit: Option<String>,
        tag: Option<String>,
        branch: Option<String>,
    },
}

/// One external repository as the WORKSPACE file declares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepoRule {
    pub name: String,
    /// `http_archive`, `new_local_repository`, ... for messages.
    pub rule: String,
    pub kind: RepoKind,
    /// `build_file`: a label (`//:BUILD.x`) or, as `new_http_archive` allowed, a path relative
    /// to the workspace.
    pub build_file: Option<String>,
    pub build_file_content: Option<String>,
    /// `WORKSPACE:3:1`, where the rule was called.
    pub location: String,
    /// `repo_mapping`: `@x` in this repository's files means `@y` (`"@x": "@y"`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub repo_mapping: BTreeMap<String, String>,
}

/// A `build_file` argument (a label string or a `Label`) as text.
fn build_file_text(name: &str, value: Option<Value>) -> anyhow::Result<Option<String>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| label_text(v, &format!("repository '{name}': build_file")))
        .transpose()
}

/// A `repo_mapping` argument: a dict of `"@name"` to `"@name"`.
fn repo_mapping_of(name: &str, value: Option<Value>) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(BTreeMap::new());
    };
    let bad = || {
        anyhow::anyhow!(
            "repository '{name}': repo_mapping must be a dict of repository names, as in \
             {{\"@other\": \"@mine\"}}"
        )
    };
    let dict = DictRef::from_value(value).ok_or_else(bad)?;
    dict.iter()
        .map(|(k, v)| {
            let (k, v) = (
                k.unpack_str().ok_or_else(bad)?,
                v.unpack_str().ok_or_else(bad)?,
            );
            if !k.starts_with('@') || !v.starts_with('@') {
                return Err(bad());
            }
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

fn urls_of(url: Option<String>, urls: Option<UnpackListOrTuple<String>>) -> Vec<String> {
    let mut all: Vec<String> = urls.map(|u| u.items).unwrap_or_default();
    if let Some(u) = url {
        all.insert(0, u);
    }
    all
}

/// The repository rules Bazel 4 implements natively, which refuse a redeclaration after a
/// load (`new_http_archive` is not in Bazel 4; it was native before).
const NATIVE_IN_BAZEL: &[&str] = &[
    "local_repository",
    "new_local_repository",
    "new_http_archive",
];

fn record(eval: &mut Evaluator, rule: RepoRule) -> anyhow::Result<NoneType> {
    let ctx = eval
        .extra
        .and_then(|e| e.downcast_ref::<WorkspaceContext>())
        .ok_or_else(|| anyhow::anyhow!("internal error: no workspace context"))?;
    crate::core::label::validate_repo(&rule.name).map_err(|e| anyhow::Error::msg(e.reason))?;
    if rule.name.is_empty() {
        anyhow::bail!("a repository needs a name");
    }
    let mut declared = ctx.declared.borrow_mut();
    // As in Bazel 4: a later declaration replaces an earlier one, except that the rules
    // built into Bazel (not its Starlark ones, such as http_archive) refuse to redeclare a
    // repository after the first load(), which may already have used it.
    if ctx.after_load.get()
        && NATIVE_IN_BAZEL.contains(&rule.rule.as_str())
        && let Some(earlier) = declared.repositories.get(&rule.name)
    {
        anyhow::bail!(
            "cannot redefine repository '{}' after a load() in WORKSPACE: it is declared at {} \
             already. Declare it once, or use maybe() from \
             @bazel_tools//tools/build_defs/repo:utils.bzl in macros",
            rule.name,
            earlier.location
        );
    }
    declared.repositories.insert(rule.name.clone(), rule);
    Ok(NoneType)
}

/// Where the rule was called: the innermost call outside forge's `@bazel_tools` files, so
/// that a repository declared through `maybe()` is reported at the `maybe()` call.
fn location(eval: &Evaluator) -> String {
    let served_by_forge = |l: &starlark::codemap::FileSpan| {
        l.filename()
            .starts_with(&format!("@{}//", super::bazel_tools::REPO))
    };
    let stack = eval.call_stack();
    stack
        .frames
        .iter()
        .rev()
        .filter_map(|f| f.location.as_ref())
        .find(|l| !served_by_forge(l))
        .cloned()
        .or_else(|| eval.call_stack_top_location())
        .map(|l| {
            let span = l.resolve_span();
            format!(
                "{}:{}:{}",
                l.filename(),
                span.begin.line + 1,
                span.begin.column + 1
            )
        })
        .unwrap_or_else(|| "WORKSPACE".to_owned())
}

/// The repository rules, as WORKSPACE globals and as the members of
/// `@bazel_tools//tools/build_defs/repo:http.bzl`.
#[starlark_module]
pub fn repository_rules(builder: &mut GlobalsBuilder) {
    /// An archive fetched from `url`/`urls`, pinned by `sha256`, extracted as `@name`.
    fn http_archive<'v>(
        #[starlark(require = named)] name: String,
        #[starlark(require = named)] url: Option<String>,
        #[starlark(require = named)] urls: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named)] sha256: Option<String>,
        #[starlark(require = named, default = String::new())] strip_prefix: String,
        #[starlark(require = named, default = String::new())] add_prefix: String,
        #[starlark(require = named)] build_file: Option<Value<'v>>,
        #[starlark(require = named)] build_file_content: Option<String>,
        #[starlark(require = named)] r#type: Option<String>,
        #[starlark(require = named)] patches: Option<UnpackListOrTuple<Value<'v>>>,
        #[starlark(require = named)] patch_args: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named)] workspace_file_content: Option<String>,
        #[starlark(require = named)] repo_mapping: Option<Value<'v>>,
        #[starlark(require = named)] integrity: Option<String>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        if workspace_file_content.is_some() {
            anyhow::bail!(
                "http_archive(name = '{name}'): 'workspace_file_content' is not supported by \
                 forge, which does not read an external repository's WORKSPACE file; remove it"
            );
        }
        let sha256 = pin(&name, sha256, integrity)?;
        let repo_mapping = repo_mapping_of(&name, repo_mapping)?;
        archive(
            eval,
            repo_mapping,
            "http_archive",
            name,
            urls_of(url, urls),
            sha256,
            strip_prefix,
            add_prefix,
            build_file,
            build_file_content,
            r#type,
            patches,
            patch_args,
        )
    }

    /// `http_archive` under its old name (Bazel dropped it; forge keeps it).
    fn new_http_archive<'v>(
        #[starlark(require = named)] name: String,
        #[starlark(require = named)] url: Option<String>,
        #[starlark(require = named)] urls: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named)] sha256: Option<String>,
        #[starlark(require = named, default = String::new())] strip_prefix: String,
        #[starlark(require = named, default = String::new())] add_prefix: String,
        #[starlark(require = named)] build_file: Option<Value<'v>>,
        #[starlark(require = named)] build_file_content: Option<String>,
        #[starlark(require = named)] r#type: Option<String>,
        #[starlark(require = named)] patches: Option<UnpackListOrTuple<Value<'v>>>,
        #[starlark(require = named)] patch_args: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named)] repo_mapping: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let repo_mapping = repo_mapping_of(&name, repo_mapping)?;
        archive(
            eval,
            repo_mapping,
            "new_http_archive",
            name,
            urls_of(url, urls),
            sha256,
            strip_prefix,
            add_prefix,
            build_file,
            build_file_content,
            r#type,
            patches,
            patch_args,
        )
    }

    /// One file fetched from `url`/`urls`, pinned by `sha256`, as `@name//file`.
    fn http_file<'v>(
        #[starlark(require = named)] name: String,
        #[starlark(require = named)] url: Option<String>,
        #[starlark(require = named)] urls: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named)] sha256: Option<String>,
        #[starlark(require = named)] downloaded_file_path: Option<String>,
        #[starlark(require = named, default = false)] executable: bool,
        #[starlark(require = named)] repo_mapping: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let repo_mapping = repo_mapping_of(&name, repo_mapping)?;
        let urls = urls_of(url, urls);
        if urls.is_empty() {
            anyhow::bail!("http_file(name = '{name}') needs url or urls");
        }
        let downloaded_file_path = downloaded_file_path.unwrap_or_else(|| {
            urls[0]
                .rsplit('/')
                .next()
                .filter(|b| !b.is_empty())
                .unwrap_or("downloaded")
                .to_owned()
        });
        check_downloaded_file_path(&downloaded_file_path)
            .map_err(|e| anyhow::anyhow!("http_file(name = '{name}'): {e}"))?;
        let location = location(eval);
        record(
            eval,
            RepoRule {
                name,
                rule: "http_file".to_owned(),
                kind: RepoKind::File {
                    urls,
                    sha256,
                    downloaded_file_path,
                    executable,
                },
                build_file: None,
                build_file_content: None,
                location,
                repo_mapping,
            },
        )
    }

    /// One jar fetched from `url`/`urls`, pinned by `sha256`, as `@name//jar:file`.
    fn http_jar<'v>(
        #[starlark(require = named)] name: String,
        #[starlark(require = named)] url: Option<String>,
        #[starlark(require = named)] urls: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named)] sha256: Option<String>,
        #[starlark(require = named)] integrity: Option<String>,
        #[starlark(require = named)] downloaded_file_name: Option<String>,
        #[starlark(require = named)] repo_mapping: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let repo_mapping = repo_mapping_of(&name, repo_mapping)?;
        let urls = urls_of(url, urls);
        if urls.is_empty() {
            anyhow::bail!("http_jar(name = '{name}') needs url or urls");
        }
        let downloaded_file_name =
            downloaded_file_name.unwrap_or_else(|| "downloaded.jar".to_owned());
        check_downloaded_file_path(&downloaded_file_name)
            .map_err(|e| anyhow::anyhow!("http_jar(name = '{name}'): {e}"))?;
        let sha256 = pin(&name, sha256, integrity)?;
        let location = location(eval);
        record(
            eval,
            RepoRule {
                name,
                rule: "http_jar".to_owned(),
                kind: RepoKind::Jar {
                    urls,
                    sha256: sha256.filter(|s| !s.is_empty()),
                    downloaded_file_name,
                },
                build_file: None,
                build_file_content: None,
                location,
                repo_mapping,
            },
        )
    }

    /// A git repository: declared here, refused when fetched (forge reaches no network).
    fn git_repository<'v>(
        #[starlark(require = named)] name: String,
        #[starlark(require = named)] remote: String,
        #[starlark(require = named)] commit: Option<String>,
        #[starlark(require = named)] tag: Option<String>,
        #[starlark(require = named)] branch: Option<String>,
        #[starlark(require = named)] repo_mapping: Option<Value<'v>>,
        #[starlark(kwargs)] _other: DictRef<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        git(
            eval,
            "git_repository",
            name,
            remote,
            commit,
            tag,
            branch,
            repo_mapping,
        )
    }

    /// `git_repository` with a BUILD file: declared here, refused when fetched.
    fn new_git_repository<'v>(
        #[starlark(require = named)] name: String,
        #[starlark(require = named)] remote: String,
        #[starlark(require = named)] commit: Option<String>,
        #[starlark(require = named)] tag: Option<String>,
        #[starlark(require = named)] branch: Option<String>,
        #[starlark(require = named)] repo_mapping: Option<Value<'v>>,
        #[starlark(kwargs)] _other: DictRef<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        git(
            eval,
            "new_git_repository",
            name,
            remote,
            commit,
            tag,
            branch,
            repo_mapping,
        )
    }
}

/// `local_repository` and `new_local_repository`: WORKSPACE globals, `native.*` and the
/// members of `@bazel_tools//tools/build_defs/repo:local.bzl`.
#[starlark_module]
pub fn local_rules(builder: &mut GlobalsBuilder) {
    /// A directory on this machine that is a workspace of its own, as `@name`.
    fn local_repository<'v>(
        #[starlark(require = named)] name: String,
        #[starlark(require = named)] path: String,
        #[starlark(require = named)] repo_mapping: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let repo_mapping = repo_mapping_of(&name, repo_mapping)?;
        let location = location(eval);
        record(
            eval,
            RepoRule {
                name,
                rule: "local_repository".to_owned(),
                kind: RepoKind::Local { path },
                build_file: None,
                build_file_content: None,
                location,
                repo_mapping,
            },
        )
    }

    /// A directory on this machine given a BUILD file, as `@name`.
    fn new_local_repository<'v>(
        #[starlark(require = named)] name: String,
        #[starlark(require = named)] path: String,
        #[starlark(require = named)] build_file: Option<Value<'v>>,
        #[starlark(require = named)] build_file_content: Option<String>,
        #[starlark(require = named)] repo_mapping: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let repo_mapping = repo_mapping_of(&name, repo_mapping)?;
        let build_file = build_file_text(&name, build_file)?;
        if build_file.is_none() && build_file_content.is_none() {
            anyhow::bail!(
                "new_local_repository(name = '{name}') needs build_file or build_file_content"
            );
        }
        let location = location(eval);
        record(
            eval,
            RepoRule {
                name,
                rule: "new_local_repository".to_owned(),
                kind: RepoKind::Local { path },
                build_file,
                build_file_content,
                location,
                repo_mapping,
            },
        )
    }
}

/// The sha256 an archive is pinned by: `sha256`, or the digest in an `integrity` string
/// (Subresource Integrity, `sha256-<base64>`); both given must agree.
fn pin(
    name: &str,
    sha256: Option<String>,
    integrity: Option<String>,
) -> anyhow::Result<Option<String>> {
    let Some(integrity) = integrity.filter(|i| !i.is_empty()) else {
        return Ok(sha256);
    };
    let from_integrity = sri_sha256(&integrity).map_err(|e| {
        anyhow::anyhow!("http_archive(name = '{name}'): integrity '{integrity}' {e}")
    })?;
    match sha256.filter(|s| !s.is_empty()) {
        Some(s) if !s.eq_ignore_ascii_case(&from_integrity) => anyhow::bail!(
            "http_archive(name = '{name}'): sha256 '{s}' and integrity '{integrity}' \
             (sha256 {from_integrity}) pin different files; keep one of them"
        ),
        _ => Ok(Some(from_integrity)),
    }
}

/// Why an `integrity` string pins no sha256; the message follows "integrity '...' ".
#[derive(Debug, thiserror::Error)]
enum IntegrityError {
    #[error("is not of the form 'sha256-<base64 digest>'")]
    Malformed,
    #[error(
        "uses '{0}', which forge does not support: forge verifies downloads by \
         sha256; give integrity = \"sha256-...\" or sha256 = \"<hex>\""
    )]
    UnsupportedAlgorithm(String),
    #[error("does not hold a base64 sha256 digest (32 bytes)")]
    NotADigest,
}

/// The hex sha256 of an SRI string `sha256-<base64>`.
fn sri_sha256(integrity: &str) -> Result<String, IntegrityError> {
    let (algorithm, encoded) = integrity.split_once('-').ok_or(IntegrityError::Malformed)?;
    if algorithm != "sha256" {
        return Err(IntegrityError::UnsupportedAlgorithm(algorithm.to_owned()));
    }
    let bytes = base64_decode(encoded)
        .filter(|b| b.len() == 32)
        .ok_or(IntegrityError::NotADigest)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Standard base64 (with or without `=` padding); `None` if not valid.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn git(
    eval: &mut Evaluator,
    rule: &str,
    name: String,
    remote: String,
    commit: Option<String>,
    tag: Option<String>,
    branch: Option<String>,
    repo_mapping: Option<Value>,
) -> anyhow::Result<NoneType> {
    let repo_mapping = repo_mapping_of(&name, repo_mapping)?;
    let location = location(eval);
    record(
        eval,
        RepoRule {
            name,
            rule: rule.to_owned(),
            kind: RepoKind::Git {
                remote,
                commit,
                tag,
                branch,
            },
            build_file: None,
            build_file_content: None,
            location,
            repo_mapping,
        },
    )
}

fn archive<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    repo_mapping: BTreeMap<String, String>,
    rule: &str,
    name: String,
    urls: Vec<String>,
    sha256: Option<String>,
    strip_prefix: String,
    add_prefix: String,
    build_file: Option<Value<'v>>,
    build_file_content: Option<String>,
    archive_type: Option<String>,
    patches: Option<UnpackListOrTuple<Value<'v>>>,
    patch_args: Option<UnpackListOrTuple<String>>,
) -> anyhow::Result<NoneType> {
    let build_file = build_file_text(&name, build_file)?;
    let patches = patches
        .map(|p| p.items)
        .unwrap_or_default()
        .into_iter()
        .map(|p| label_text(p, &format!("{rule}(name = '{name}'): each of patches")))
        .collect::<anyhow::Result<Vec<String>>>()?;
    if urls.is_empty() {
        anyhow::bail!("{rule}(name = '{name}') needs url or urls");
    }
    let location = location(eval);
    record(
        eval,
        RepoRule {
            name,
            rule: rule.to_owned(),
            kind: RepoKind::Archive {
                urls,
                sha256: sha256.filter(|s| !s.is_empty()),
                strip_prefix,
                add_prefix,
                archive_type,
                patches,
                patch_args: patch_args
                    .map(|p| p.items)
                    .unwrap_or_else(|| vec!["-p0".to_owned()]),
            },
            build_file,
            build_file_content,
            location,
            repo_mapping,
        },
    )
}

/// A `downloaded_file_path` that would put the file outside its repository, and why.
#[derive(Debug, thiserror::Error)]
#[error(
    "downloaded_file_path '{path}' {why}: give a relative path inside the repository, e.g. \"tool.sh\" or \"bin/tool\""
)]
pub struct DownloadedFilePathError {
    pub path: String,
    pub why: &'static str,
}

/// Refuses a `downloaded_file_path` that would put the file outside its repository.
pub fn check_downloaded_file_path(path: &str) -> Result<(), DownloadedFilePathError> {
    use std::path::{Component, Path};
    let bad = |why: &'static str| {
        Err(DownloadedFilePathError {
            path: path.to_owned(),
            why,
        })
    };
    if path.is_empty() {
        return bad("is empty");
    }
    for c in Path::new(path).components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return bad("has a '..' component"),
            Component::RootDir | Component::Prefix(_) => return bad("is an absolute path"),
        }
    }
    if Path::new(path).components().all(|c| c == Component::CurDir) {
        return bad("names no file");
    }
    Ok(())
}

/// The repositories declared, by name.
pub type Repos = BTreeMap<String, RepoRule>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sri_sha256_is_decoded_and_other_algorithms_refused() {
        // sha256 of the empty string.
        assert_eq!(
            sri_sha256("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(
            sri_sha256("sha512-abc")
                .unwrap_err()
                .to_string()
                .contains("'sha512'")
        );
        assert!(sri_sha256("sha256-abc").is_err());
        assert!(sri_sha256("nodash").is_err());
    }
}
