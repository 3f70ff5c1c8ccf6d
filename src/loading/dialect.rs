//! The two Starlark dialects: Bazel's restricted BUILD language and the richer .bzl language,
//! plus the BUILD-only check the parser has no flag for (no `*args` / `**kwargs` in calls).

use starlark::codemap::{FileSpan, Span};
use starlark::syntax::ast::{ArgumentP, AstExpr, AstStmt, ExprP};
use starlark::syntax::{AstModule, Dialect, DialectTypes};

/// BUILD files: no `def`, no top-level `for`/`if`, no type annotations, no re-exports.
pub fn build() -> Dialect {
    Dialect {
        enable_def: false,
        enable_lambda: true,
        enable_load: true,
        enable_keyword_only_arguments: false,
        enable_positional_only_arguments: false,
        enable_types: DialectTypes::Disable,
        enable_load_reexport: false,
        enable_top_level_stmt: false,
        enable_f_strings: true,
        ..Dialect::Standard
    }
}

/// .bzl files: functions (macros, rule implementations), keyword-only arguments, types.
pub fn bzl() -> Dialect {
    Dialect {
        enable_def: true,
        enable_lambda: true,
        enable_load: true,
        enable_keyword_only_arguments: true,
        enable_positional_only_arguments: false,
        enable_types: DialectTypes::Enable,
        enable_load_reexport: false,
        enable_top_level_stmt: true,
        enable_f_strings: true,
        ..Dialect::Standard
    }
}

/// The span of the first `*args` or `**kwargs` call argument in a BUILD file, if any:
/// Bazel forbids them there so that every rule call can be read without evaluating it.
pub fn find_star_argument(ast: &AstModule) -> Option<(FileSpan, &'static str)> {
    let mut found: Option<(Span, &'static str)> = None;
    visit_stmt(ast.statement(), &mut found);
    found.map(|(span, kind)| (ast.file_span(span), kind))
}

fn visit_stmt(stmt: &AstStmt, found: &mut Option<(Span, &'static str)>) {
    stmt.visit_expr(|e| visit_expr(e, found));
}

fn visit_expr(expr: &AstExpr, found: &mut Option<(Span, &'static str)>) {
    if found.is_some() {
        return;
    }
    if let ExprP::Call(_, args) = &expr.node {
        for arg in &args.args {
            match &arg.node {
                ArgumentP::Args(_) => *found = Some((arg.span, "*args")),
                ArgumentP::KwArgs(_) => *found = Some((arg.span, "**kwargs")),
                _ => continue,
            }
            return;
        }
    }
    expr.visit_expr(|e| visit_expr(e, found));
}
