//! Starlark source text in, `Ok` or the first place where it nests too deeply out.
//!
//! The Starlark parser, compiler and evaluator recurse once per level of nesting, so a
//! generated or hostile file with thousands of nested brackets, blocks or chained operators
//! would overflow the thread's stack and abort forge with a signal. This cheap scan runs
//! before parsing and turns such files into one error with file:line:column. It skips
//! strings and comments and measures two things:
//!
//! - *nesting*: open brackets plus indented blocks (and `elif` chains, which nest in the
//!   syntax tree), limited to [`MAX_NESTING`] as Python limits parentheses to 200;
//! - *depth*: nesting plus the operators (`+`, `.`, `not`, `if`, ...) chained within one
//!   expression at each open level, an upper bound of the syntax tree's depth, limited to
//!   [`MAX_DEPTH`]. A long `a + b + ...` chain nests as deeply as brackets do.
//!
//! The threads that evaluate Starlark have a stack large enough for these limits
//! ([`STARLARK_STACK_BYTES`]).

use super::{Diagnostic, Location};

/// Brackets and blocks, nested.
pub const MAX_NESTING: usize = 200;
/// Nesting plus chained operators.
pub const MAX_DEPTH: usize = 2000;
/// The stack of every thread that parses or evaluates Starlark or a query: unoptimised
/// builds use about 30 KiB per level of nesting, so this leaves a wide margin over
/// [`MAX_DEPTH`]. It is address space, reserved, not memory used.
pub const STARLARK_STACK_BYTES: usize = 256 << 20;

/// One open bracket: the operators chained inside it so far.
struct Level {
    ops: usize,
}

/// Checks `source` (shown as `file` in the message). Linear in the length of the text.
pub fn check(file: &str, source: &str) -> Result<(), Diagnostic> {
    Scanner {
        file,
        chars: source.chars().collect(),
        pos: 0,
        line: 1,
        column: 1,
    }
    .run()
}

struct Scanner<'a> {
    file: &'a str,
    chars: Vec<char>,
    pos: usize,
    line: u32,
    column: u32,
}

const OPERATOR_KEYWORDS: [&str; 7] = ["not", "and", "or", "in", "if", "else", "lambda"];
/// Keywords after which a bracket opens a literal, not a call.
const STATEMENT_KEYWORDS: [&str; 6] = ["return", "for", "elif", "while", "assert", "del"];

impl Scanner<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn here(&self) -> Location {
        Location {
            file: self.file.to_owned(),
            line: self.line,
            column: self.column,
        }
    }

    fn run(mut self) -> Result<(), Diagnostic> {
        // Open brackets, innermost last, and the operators chained outside any bracket.
        let mut brackets: Vec<Level> = Vec::new();
        let mut top = Level { ops: 0 };
        // Indentation widths of the open blocks, and the `elif`s chained at each.
        let mut indents: Vec<usize> = vec![0];
        let mut elifs: Vec<usize> = vec![0];
        let mut at_line_start = true;
        // Whether the last token ends an operand, so that a bracket after it is a call or
        // an index, which chains like an operator: `f(x)[0](y)`.
        let mut after_operand = false;
        loop {
            if at_line_start && brackets.is_empty() {
                // A logical line begins: measure its indentation unless it is blank.
                let mut width = 0;
                while let Some(c @ (' ' | '\t' | '\x0c')) = self.peek(0) {
                    width = if c == '\t' {
                        (width / 8 + 1) * 8
                    } else {
                        width + 1
                    };
                    self.bump();
                }
                match self.peek(0) {
                    None => return Ok(()),
                    Some('\n' | '#') | Some('\r') => {}
                    Some(_) => {
                        at_line_start = false;
                        if width > *indents.last().unwrap_or(&0) {
                            indents.push(width);
                            elifs.push(0);
                        } else {
                            while indents.len() > 1 && width < *indents.last().unwrap_or(&0) {
                                indents.pop();
                                elifs.pop();
                            }
                        }
                        let word = self.word_at(self.pos);
                        let chain = elifs.last_mut().expect("one level at least");
                        match word.as_str() {
                            "elif" => *chain += 1,
                            "else" => {}
                            _ => *chain = 0,
                        }
                        let nesting = indents.len() - 1 + elifs.iter().sum::<usize>();
                        if nesting > MAX_NESTING {
                            return Err(self.too_deep("blocks"));
                        }
                    }
                }
            }
            let Some(c) = self.peek(0) else {
                return Ok(());
            };
            match c {
                '\n' => {
                    self.bump();
                    if brackets.is_empty() {
                        at_line_start = true;
                        top.ops = 0;
                    }
                    continue;
                }
                '#' => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                    continue;
                }
                '\\' if self.peek(1) == Some('\n') => {
                    self.bump();
                    self.bump();
                    continue;
                }
                '"' | '\'' => {
                    self.skip_string();
                    after_operand = true;
                    continue;
                }
                'r' | 'R' | 'b' | 'B' if matches!(self.peek(1), Some('"' | '\'')) => {
                    self.bump();
                    self.skip_string();
                    after_operand = true;
                    continue;
                }
                _ => {}
            }
            let mut op = false;
            if c.is_alphanumeric() || c == '_' {
                let word = self.word_at(self.pos);
                op = OPERATOR_KEYWORDS.contains(&word.as_str());
                for _ in word.chars() {
                    self.bump();
                }
                after_operand = !op && !STATEMENT_KEYWORDS.contains(&word.as_str());
                if op {
                    self.count_op(&mut brackets, &mut top, &indents, &elifs)?;
                }
                continue;
            }
            match c {
                '(' | '[' | '{' => {
                    // A literal, or a call or an index, which also chains: one level more.
                    if after_operand {
                        self.count_op(&mut brackets, &mut top, &indents, &elifs)?;
                    }
                    brackets.push(Level { ops: 0 });
                    if brackets.len() > MAX_NESTING {
                        return Err(self.too_deep("brackets"));
                    }
                    self.check_depth(&brackets, &top, &indents, &elifs)?;
                }
                ')' | ']' | '}' => {
                    brackets.pop();
                }
                ',' | ';' => current(&mut brackets, &mut top).ops = 0,
                '=' if self.peek(1) == Some('=') => {
                    self.bump();
                    op = true;
                }
                '=' => current(&mut brackets, &mut top).ops = 0,
                '+' | '-' | '*' | '/' | '%' | '&' | '|' | '^' | '<' | '>' | '!' | '.' => {
                    // `x += 1` assigns; `a.b`, `a + b`, `-a`, `a <= b`, `a ** b` chain.
                    let mut len = 1;
                    if "*/<>".contains(c) && self.peek(1) == Some(c) {
                        len = 2;
                    }
                    let assign = self.peek(len) == Some('=');
                    let comparison = len == 1 && matches!(c, '<' | '>' | '!');
                    if assign {
                        len += 1;
                    }
                    if assign && !comparison {
                        current(&mut brackets, &mut top).ops = 0;
                    } else if !(c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit())) {
                        op = true;
                    }
                    for _ in 1..len {
                        self.bump();
                    }
                }
                '~' => op = true,
                _ => {}
            }
            if op {
                self.count_op(&mut brackets, &mut top, &indents, &elifs)?;
            }
            if !c.is_whitespace() {
                after_operand = matches!(c, ')' | ']' | '}');
            }
            self.bump();
        }
    }

    /// The identifier or number starting at `pos`.
    fn word_at(&self, pos: usize) -> String {
        self.chars[pos..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .collect()
    }

    fn count_op(
        &self,
        brackets: &mut [Level],
        top: &mut Level,
        indents: &[usize],
        elifs: &[usize],
    ) -> Result<(), Diagnostic> {
        current(brackets, top).ops += 1;
        self.check_depth(brackets, top, indents, elifs)
    }

    fn check_depth(
        &self,
        brackets: &[Level],
        top: &Level,
        indents: &[usize],
        elifs: &[usize],
    ) -> Result<(), Diagnostic> {
        let depth = indents.len()
            + elifs.iter().sum::<usize>()
            + top.ops
            + brackets.iter().map(|b| b.ops + 1).sum::<usize>();
        if depth > MAX_DEPTH {
            return Err(Diagnostic::at(
                &self.here(),
                format!(
                    "expression nested too deeply: more than {MAX_DEPTH} levels of brackets, \
                     blocks and chained operators; split it with intermediate variables"
                ),
            ));
        }
        Ok(())
    }

    fn too_deep(&self, what: &str) -> Diagnostic {
        Diagnostic::at(
            &self.here(),
            format!(
                "nested too deeply: more than {MAX_NESTING} levels of {what}; \
                 flatten the code (helper functions, intermediate variables)"
            ),
        )
    }

    /// Skips a string literal starting at the quote under the cursor.
    fn skip_string(&mut self) {
        let quote = self.peek(0).expect("at a quote");
        let triple = self.peek(1) == Some(quote) && self.peek(2) == Some(quote);
        let len = if triple { 3 } else { 1 };
        for _ in 0..len {
            self.bump();
        }
        while let Some(c) = self.peek(0) {
            if c == '\\' {
                // Even in a raw string a backslash keeps the next quote in the string.
                self.bump();
                self.bump();
                continue;
            }
            if c == '\n' && !triple {
                // An unterminated string: the parser reports it.
                return;
            }
            if c == quote
                && (!triple || (self.peek(1) == Some(quote) && self.peek(2) == Some(quote)))
            {
                for _ in 0..len {
                    self.bump();
                }
                return;
            }
            self.bump();
        }
    }
}

fn current<'a>(brackets: &'a mut [Level], top: &'a mut Level) -> &'a mut Level {
    match brackets.last_mut() {
        Some(level) => level,
        None => top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(source: &str) -> String {
        check("f.bzl", source).unwrap_err().to_string()
    }

    #[test]
    fn ordinary_code_passes() {
        let source = r#"
load(":defs.bzl", "x")  # a comment with ((((
s = "((((" + '[[[[' + """
]]]] ))))
""" + r"\"(("
def f(a, b = 1):
    if a:
        return [x + 1 for x in b if x] + {"k": a.b.c(1)[2]}
    elif b:
        pass
    else:
        a += 1.5
"#;
        check("f.bzl", source).unwrap();
    }

    #[test]
    fn deep_brackets_name_the_place() {
        let source = format!("x = 1\ny = {}{}\n", "[".repeat(300), "]".repeat(300));
        let e = err(&source);
        assert!(e.starts_with("f.bzl:2:205: nested too deeply"), "{e}");
        assert!(
            check(
                "f.bzl",
                &format!("y = {}{}", "(".repeat(200), ")".repeat(200))
            )
            .is_ok()
        );
    }

    #[test]
    fn deep_blocks_and_elif_chains() {
        let mut s = String::from("def f(x):\n");
        for i in 1..=250 {
            s += &format!("{}if x:\n", "  ".repeat(i));
        }
        s += &format!("{}pass\n", "  ".repeat(251));
        assert!(err(&s).starts_with("f.bzl:202:"), "{}", err(&s));
        let mut s = String::from("def f(x):\n    if x == 0:\n        pass\n");
        for i in 1..=300 {
            s += &format!("    elif x == {i}:\n        pass\n");
        }
        assert!(err(&s).contains("nested too deeply"));
    }

    #[test]
    fn long_operator_chains() {
        let ok = format!("x = {}\n", vec!["1"; 1000].join(" + "));
        check("f.bzl", &ok).unwrap();
        let bad = format!("x = {}\n", vec!["1"; 3000].join(" + "));
        assert!(err(&bad).contains("expression nested too deeply"));
        let bad = format!("x = {}True\n", "not ".repeat(3000));
        assert!(err(&bad).contains("expression nested too deeply"));
        let bad = format!("x = s{}\n", ".x".repeat(3000));
        assert!(err(&bad).contains("expression nested too deeply"));
        let bad = format!("x = [1]{}\n", "[0]".repeat(3000));
        assert!(err(&bad).contains("expression nested too deeply"));
        let bad = format!("x = f{}\n", "()".repeat(3000));
        assert!(err(&bad).contains("expression nested too deeply"));
        // Commas end a chain: a long flat list is fine.
        let flat = format!("x = [{}]\n", vec!["-1"; 10000].join(", "));
        check("f.bzl", &flat).unwrap();
    }
}
