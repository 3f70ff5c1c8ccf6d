//! The `//external` package of `bind()`: the WORKSPACE file's binds in, the BUILD text of a
//! package of public aliases out (`//external:zlib` -> `@net_zlib//:zlib`), as Bazel makes
//! it. Only when the workspace has binds and no `external/` package of its own.

use crate::core::PackageId;

impl super::Loader {
    /// The BUILD text of `id` if it is the `//external` package of the WORKSPACE binds.
    pub(super) fn bound_package_source(&self, id: &PackageId) -> Option<String> {
        let workspace = &self.workspace;
        if !id.repo.is_empty() || id.package != "external" || workspace.binds.is_empty() {
            return None;
        }
        let dir = workspace.root.join("external");
        if super::BUILD_FILE_NAMES
            .iter()
            .any(|f| dir.join(f).is_file())
        {
            return None;
        }
        let mut source = String::new();
        for (name, actual) in &workspace.binds {
            // Names and labels were checked by bind(): no quote can be in them.
            if actual.is_empty() {
                source.push_str(&format!(
                    "filegroup(name = \"{name}\", visibility = [\"//visibility:public\"])\n"
                ));
            } else {
                source.push_str(&format!(
                    "alias(name = \"{name}\", actual = \"{actual}\", visibility = [\"//visibility:public\"])\n"
                ));
            }
        }
        Some(source)
    }
}
