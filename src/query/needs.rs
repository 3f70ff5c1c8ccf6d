//! What answering a query reads: an expression and how it is printed in, whether the target
//! set alone (labels, kinds, locations) answers it out — then no rule attribute is kept and
//! no dependency edge resolved.
//!
//! `//...`, `kind(genrule, //pkg/...)` or `//a:all - //a:x` printed as labels need each
//! target's name and kind, not its attributes; over a 50,000-target workspace, keeping every
//! attribute and checking every edge was most of such a query's time and memory.

use super::order::OrderOutput;
use super::output::OutputFormat;
use super::parser::Expr;

/// True when `expr` printed in `format` and `order` reads nothing of a target but its label,
/// kind, location and package: no attribute, no dependency edge.
pub fn answered_by_target_set(expr: &Expr, format: OutputFormat, order: OrderOutput) -> bool {
    let format_reads_names_only = matches!(
        format,
        OutputFormat::Label
            | OutputFormat::LabelKind
            | OutputFormat::Package
            | OutputFormat::Location
    );
    // `deps` and `full` order the result by its edges.
    let order_reads_names_only = matches!(order, OrderOutput::Auto | OrderOutput::No);
    format_reads_names_only && order_reads_names_only && selects_by_name_only(expr)
}

/// Whether evaluating `expr` looks only at which targets the patterns name and at their
/// labels and kinds. Every function not listed follows edges or reads attributes.
fn selects_by_name_only(expr: &Expr) -> bool {
    match expr {
        Expr::Pattern(_) | Expr::Var(_) | Expr::Set(_) => true,
        Expr::Let { value, body, .. } => selects_by_name_only(value) && selects_by_name_only(body),
        Expr::Binary { left, right, .. } => {
            selects_by_name_only(left) && selects_by_name_only(right)
        }
        Expr::Kind { of, .. } | Expr::Filter { of, .. } | Expr::Siblings(of) => {
            selects_by_name_only(of)
        }
        Expr::Deps { .. }
        | Expr::Rdeps { .. }
        | Expr::AllRdeps { .. }
        | Expr::SomePath { .. }
        | Expr::AllPaths { .. }
        | Expr::Attr { .. }
        | Expr::Labels { .. }
        | Expr::Tests(_)
        | Expr::BuildFiles(_)
        | Expr::LoadFiles(_)
        | Expr::RBuildFiles(_)
        | Expr::Visible { .. }
        | Expr::SamePkgDirectRdeps(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse;

    fn by_names(text: &str, format: OutputFormat, order: OrderOutput) -> bool {
        answered_by_target_set(&parse(text).expect("parses"), format, order)
    }

    #[test]
    fn patterns_kinds_and_set_operations_need_only_the_target_set() {
        for text in [
            "//...",
            "//a/... - //a/b:all",
            "kind(genrule, //...) intersect filter('x', //a:*)",
            "let v = //a:all in siblings($v) + set(//b:x //c:y)",
        ] {
            assert!(
                by_names(text, OutputFormat::Label, OrderOutput::Auto),
                "{text}"
            );
        }
        assert!(by_names("//...", OutputFormat::LabelKind, OrderOutput::No));
        assert!(by_names("//...", OutputFormat::Location, OrderOutput::Auto));
        assert!(by_names("//...", OutputFormat::Package, OrderOutput::Auto));
    }

    #[test]
    fn edges_attributes_and_rich_formats_need_the_whole_graph() {
        for text in [
            "deps(//a)",
            "//... - rdeps(//..., //a:x)",
            "kind(rule, allrdeps(//a:x))",
            "somepath(//a, //b)",
            "allpaths(//a, //b)",
            "attr(cmd, x, //...)",
            "labels(srcs, //a:x)",
            "tests(//...)",
            "buildfiles(//a:x)",
            "loadfiles(//a:x)",
            "rbuildfiles(a/BUILD)",
            "visible(//a:x, //...)",
            "same_pkg_direct_rdeps(//a:x)",
            "let v = deps(//a) in $v",
        ] {
            assert!(
                !by_names(text, OutputFormat::Label, OrderOutput::Auto),
                "{text}"
            );
        }
        for format in [
            OutputFormat::Build,
            OutputFormat::Graph,
            OutputFormat::Json,
            OutputFormat::Xml,
            OutputFormat::StreamedJsonProto,
            OutputFormat::MinRank,
            OutputFormat::MaxRank,
        ] {
            assert!(!by_names("//...", format, OrderOutput::Auto), "{format}");
        }
        assert!(!by_names("//...", OutputFormat::Label, OrderOutput::Full));
        assert!(!by_names("//...", OutputFormat::Label, OrderOutput::Deps));
    }
}
