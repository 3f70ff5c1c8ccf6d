//! WORKSPACE's own functions besides repository rules, as globals and as `native.*` for the
//! macros it calls: `register_toolchains` and `register_execution_platforms` (patterns
//! recorded, in order, for toolchain resolution), `bind` (`//external:name` to a label), and
//! `native.existing_rule(s)` (the repositories declared so far, as dicts of their attributes),
//! `native.bazel_version`; Bazel's WORKSPACE functions forge lacks (`android_sdk_repository`)
//! refused by name.

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::dict::AllocDict;
use starlark::values::none::NoneType;
use starlark::values::tuple::UnpackTuple;
use starlark::values::{Heap, Value};

use super::evaluate::WorkspaceContext;
use super::repos::{RepoKind, RepoRule};
use super::unsupported::Unsupported;
use crate::core::{PackageId, TargetPattern};

/// `native.bazel_version` in WORKSPACE: the Bazel release whose behaviour forge follows, so
/// that version checks in WORKSPACE macros (skylib's `versions.check`) pass or fail as they
/// would there.
pub const BEHAVES_AS_BAZEL: &str = "4.2.3";

/// Checks each pattern of `register_*`; the patterns as given.
fn patterns(what: &str, given: UnpackTuple<String>) -> anyhow::Result<Vec<String>> {
    for p in &given.items {
        TargetPattern::parse(p, &PackageId::default())
            .map_err(|e| anyhow::anyhow!("{what}(): '{p}' is not a target pattern: {e}"))?;
    }
    Ok(given.items)
}

#[starlark_module]
pub fn registrations(builder: &mut GlobalsBuilder) {
    /// Registers toolchains (target patterns) for toolchain resolution, in order.
    fn register_toolchains<'v>(
        #[starlark(args)] toolchains: UnpackTuple<String>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let toolchains = patterns("register_toolchains", toolchains)?;
        let ctx = WorkspaceContext::from_eval(eval)?;
        ctx.declared.borrow_mut().toolchains.extend(toolchains);
        Ok(NoneType)
    }

    /// Registers execution platforms (target patterns), in order.
    fn register_execution_platforms<'v>(
        #[starlark(args)] platforms: UnpackTuple<String>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let platforms = patterns("register_execution_platforms", platforms)?;
        let ctx = WorkspaceContext::from_eval(eval)?;
        ctx.declared
            .borrow_mut()
            .execution_platforms
            .extend(platforms);
        Ok(NoneType)
    }

    /// `//external:<name>` is an alias of `actual`.
    fn bind<'v>(
        #[starlark(require = named)] name: String,
        #[starlark(require = named)] actual: Option<String>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        crate::core::label::validate_name(&name)
            .map_err(|e| anyhow::anyhow!("bind(name = '{name}'): {}", e.reason))?;
        let actual = actual.unwrap_or_default();
        if !actual.is_empty() {
            crate::core::Label::parse(&actual, &PackageId::default())
                .map_err(|e| anyhow::anyhow!("bind(name = '{name}'): actual: {e}"))?;
        }
        let ctx = WorkspaceContext::from_eval(eval)?;
        ctx.declared.borrow_mut().binds.insert(name, actual);
        Ok(NoneType)
    }
}

/// A repository's attributes as `native.existing_rule` gives them.
fn attributes<'v>(rule: &RepoRule, heap: Heap<'v>) -> Value<'v> {
    let text = |s: &str| heap.alloc(s);
    let list = |l: &[String]| heap.alloc(l.to_vec());
    let optional = |o: &Option<String>| match o {
        Some(s) => heap.alloc(s.as_str()),
        None => Value::new_none(),
    };
    let mut attrs: Vec<(&str, Value<'v>)> =
        vec![("name", text(&rule.name)), ("kind", text(&rule.rule))];
    match &rule.kind {
        RepoKind::Archive {
            urls,
            sha256,
            strip_prefix,
            add_prefix,
            archive_type,
            patches,
            patch_args,
        } => attrs.extend([
            ("urls", list(urls)),
            ("sha256", optional(sha256)),
            ("strip_prefix", text(strip_prefix)),
            ("add_prefix", text(add_prefix)),
            ("type", optional(archive_type)),
            ("patches", list(patches)),
            ("patch_args", list(patch_args)),
        ]),
        RepoKind::File {
            urls,
            sha256,
            downloaded_file_path,
            executable,
        } => attrs.extend([
            ("urls", list(urls)),
            ("sha256", optional(sha256)),
            ("downloaded_file_path", text(downloaded_file_path)),
            ("executable", Value::new_bool(*executable)),
        ]),
        RepoKind::Jar {
            urls,
            sha256,
            downloaded_file_name,
        } => attrs.extend([
            ("urls", list(urls)),
            ("sha256", optional(sha256)),
            ("downloaded_file_name", text(downloaded_file_name)),
        ]),
        RepoKind::Local { path } => attrs.push(("path", text(path))),
        RepoKind::Git {
            remote,
            commit,
            tag,
            branch,
        } => attrs.extend([
            ("remote", text(remote)),
            ("commit", optional(commit)),
            ("tag", optional(tag)),
            ("branch", optional(branch)),
        ]),
    }
    if rule.build_file.is_some() {
        attrs.push(("build_file", optional(&rule.build_file)));
    }
    if rule.build_file_content.is_some() {
        attrs.push(("build_file_content", optional(&rule.build_file_content)));
    }
    let mapping: Vec<(&str, &str)> = rule
        .repo_mapping
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    attrs.push(("repo_mapping", heap.alloc(AllocDict(mapping))));
    heap.alloc(AllocDict(attrs))
}

#[starlark_module]
pub fn existing_rules(builder: &mut GlobalsBuilder) {
    /// The attributes of repository `name` if it is declared so far, else None.
    fn existing_rule<'v>(
        #[starlark(require = pos)] name: String,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = WorkspaceContext::from_eval(eval)?;
        let declared = ctx.declared.borrow();
        Ok(match declared.repositories.get(&name) {
            Some(rule) => attributes(rule, eval.heap()),
            None => Value::new_none(),
        })
    }

    /// Every repository declared so far: name -> its attributes.
    fn existing_rules<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        let ctx = WorkspaceContext::from_eval(eval)?;
        let declared = ctx.declared.borrow();
        let heap = eval.heap();
        let all: Vec<(&str, Value<'v>)> = declared
            .repositories
            .iter()
            .map(|(name, rule)| (name.as_str(), attributes(rule, heap)))
            .collect();
        Ok(heap.alloc(AllocDict(all)))
    }
}

/// The WORKSPACE functions of Bazel 4 forge does not have, refused by name when called.
const REFUSED: &[(&str, &str)] = &[
    ("android_sdk_repository", "forge has no Android rules"),
    ("android_ndk_repository", "forge has no Android rules"),
    ("local_config_platform", "forge's host platform is built in"),
];

/// The refused WORKSPACE functions, as globals and in `native`.
pub fn refused(builder: &mut GlobalsBuilder) {
    for (name, why) in REFUSED {
        builder.set(name, Unsupported::because((*name).to_owned(), why));
    }
}
