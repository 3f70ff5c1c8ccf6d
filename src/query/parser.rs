//! Query text in, an `Expr` tree out (or a syntax-error `Diagnostic` saying where and what was
//! expected). Grammar, as in Bazel:
//!
//! ```text
//! expr    ::= primary (setop primary)*            left-associative, one precedence level
//! setop   ::= '+' | 'union' | '-' | 'except' | '^' | 'intersect'
//! primary ::= word | '$'name | '(' expr ')' | 'set' '(' word* ')'
//!           | 'let' name '=' expr 'in' expr | function '(' args ')'
//! ```

use std::fmt;

use super::lexer::{Token, TokenKind, tokenize};
use crate::core::{Diagnostic, diag::did_you_mean};

/// A parsed query expression. Function arguments that are words (regexes, attribute names)
/// and integers (depths) are checked while parsing, so evaluation never meets a badly-shaped
/// call.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Expr {
    /// A target pattern word: `//pkg:name`, `//pkg/...`, `:all`.
    Pattern(String),
    /// `$name`, bound by an enclosing `let`.
    Var(String),
    /// `let name = value in body`.
    Let {
        name: String,
        value: Box<Expr>,
        body: Box<Expr>,
    },
    /// `set(w1 w2 ...)`: the union of the patterns.
    Set(Vec<String>),
    Binary {
        op: SetOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `deps(of[, depth])`.
    Deps { of: Box<Expr>, depth: Option<u32> },
    /// `rdeps(universe, of[, depth])`.
    Rdeps {
        universe: Box<Expr>,
        of: Box<Expr>,
        depth: Option<u32>,
    },
    /// `allrdeps(of[, depth])`.
    AllRdeps { of: Box<Expr>, depth: Option<u32> },
    /// `somepath(from, to)`.
    SomePath { from: Box<Expr>, to: Box<Expr> },
    /// `allpaths(from, to)`.
    AllPaths { from: Box<Expr>, to: Box<Expr> },
    /// `kind(pattern, of)`.
    Kind { pattern: String, of: Box<Expr> },
    /// `attr(name, pattern, of)`.
    Attr {
        name: String,
        pattern: String,
        of: Box<Expr>,
    },
    /// `filter(pattern, of)`.
    Filter { pattern: String, of: Box<Expr> },
    /// `labels(attr, of)`.
    Labels { attr: String, of: Box<Expr> },
    /// `tests(of)`.
    Tests(Box<Expr>),
    /// `buildfiles(of)`.
    BuildFiles(Box<Expr>),
    /// `loadfiles(of)`: the .bzl files the packages of `of` load.
    LoadFiles(Box<Expr>),
    /// `rbuildfiles(path, ...)`: the BUILD files of the universe's packages that read one of
    /// these workspace-relative files (a BUILD or .bzl file), directly or through loads.
    RBuildFiles(Vec<String>),
    /// `siblings(of)`: every target in the packages of `of`.
    Siblings(Box<Expr>),
    /// `visible(predicate, of)`: the targets of `of` visible to every target of `predicate`.
    Visible { predicate: Box<Expr>, of: Box<Expr> },
    /// `same_pkg_direct_rdeps(of)`: the targets in the packages of `of` that depend directly
    /// on one of them.
    SamePkgDirectRdeps(Box<Expr>),
}

impl Expr {
    /// Every target pattern word the expression names (`cquery`'s default universe).
    pub fn patterns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_patterns(&mut out);
        out
    }

    fn collect_patterns<'e>(&'e self, out: &mut Vec<&'e str>) {
        match self {
            Expr::Pattern(p) => out.push(p),
            Expr::Set(words) => out.extend(words.iter().map(String::as_str)),
            Expr::Var(_) => {}
            Expr::Let { value, body, .. } => {
                value.collect_patterns(out);
                body.collect_patterns(out);
            }
            Expr::Binary { left, right, .. } => {
                left.collect_patterns(out);
                right.collect_patterns(out);
            }
            Expr::Rdeps { universe, of, .. } => {
                universe.collect_patterns(out);
                of.collect_patterns(out);
            }
            Expr::SomePath { from, to } | Expr::AllPaths { from, to } => {
                from.collect_patterns(out);
                to.collect_patterns(out);
            }
            Expr::Deps { of, .. }
            | Expr::AllRdeps { of, .. }
            | Expr::Kind { of, .. }
            | Expr::Attr { of, .. }
            | Expr::Filter { of, .. }
            | Expr::Labels { of, .. }
            | Expr::Tests(of)
            | Expr::BuildFiles(of)
            | Expr::LoadFiles(of)
            | Expr::Siblings(of)
            | Expr::SamePkgDirectRdeps(of) => of.collect_patterns(out),
            Expr::Visible { predicate, of } => {
                predicate.collect_patterns(out);
                of.collect_patterns(out);
            }
            // Paths of BUILD and .bzl files, not target patterns.
            Expr::RBuildFiles(_) => {}
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SetOp {
    Union,
    Except,
    Intersect,
}

/// The functions the parser knows, with the usage shown in argument-count errors.
const FUNCTIONS: &[(&str, &str)] = &[
    ("allpaths", "allpaths(from, to)"),
    ("allrdeps", "allrdeps(expr[, depth])"),
    ("attr", "attr(name, pattern, expr)"),
    ("buildfiles", "buildfiles(expr)"),
    ("deps", "deps(expr[, depth])"),
    ("filter", "filter(pattern, expr)"),
    ("kind", "kind(pattern, expr)"),
    ("labels", "labels(attr_name, expr)"),
    ("loadfiles", "loadfiles(expr)"),
    ("rbuildfiles", "rbuildfiles(path, ...)"),
    ("rdeps", "rdeps(universe, expr[, depth])"),
    ("same_pkg_direct_rdeps", "same_pkg_direct_rdeps(expr)"),
    ("siblings", "siblings(expr)"),
    ("somepath", "somepath(from, to)"),
    ("tests", "tests(expr)"),
    ("visible", "visible(predicate, expr)"),
];

/// Parses a whole query.
pub fn parse(text: &str) -> Result<Expr, Diagnostic> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        source: text.chars().collect(),
        pos: 0,
        scopes: Vec::new(),
        nesting: 0,
        depth: 0,
    };
    let expr = parser.expression()?;
    if parser.peek() != &TokenKind::Eof {
        return Err(parser.error(
            "expected an operator (+, -, ^, union, except, intersect) or the end of the query",
        ));
    }
    Ok(expr)
}

struct Parser {
    /// Always ends with `Eof`, so `peek` never runs off the end.
    tokens: Vec<Token>,
    source: Vec<char>,
    pos: usize,
    /// Variables bound by the enclosing `let`s, innermost last.
    scopes: Vec<String>,
    /// Open parentheses, function calls and `let`s around the current token.
    nesting: usize,
    /// `nesting` plus the set operators chained before the current token: how deeply the
    /// tree nests here, which bounds the recursion of evaluation.
    depth: usize,
}

/// Parentheses, function calls and `let`s, nested.
pub const MAX_NESTING: usize = 1000;
/// Nesting plus chained set operators (`a + b + ...` nests one level per operator).
pub const MAX_DEPTH: usize = 10_000;

impl Parser {
    fn token(&self, index: usize) -> &Token {
        // `tokens` ends with Eof; clamp so lookahead past it keeps seeing Eof.
        &self.tokens[index.min(self.tokens.len() - 1)]
    }

    fn peek(&self) -> &TokenKind {
        &self.token(self.pos).kind
    }

    fn peek_next(&self) -> &TokenKind {
        &self.token(self.pos + 1).kind
    }

    fn advance(&mut self) {
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
    }

    fn error(&self, message: impl fmt::Display) -> Diagnostic {
        self.error_at(self.pos, message)
    }

    /// A syntax error quoting the offending token and up to two more, as Bazel does.
    fn error_at(&self, index: usize, message: impl fmt::Display) -> Diagnostic {
        let token = self.token(index);
        if token.kind == TokenKind::Eof {
            return Diagnostic::new(format!(
                "syntax error at end of query (character {}): {message}",
                token.start
            ));
        }
        let last = (index + 2).min(self.tokens.len() - 2);
        let snippet: String = self.source[token.start..self.token(last).end]
            .iter()
            .collect();
        Diagnostic::new(format!(
            "syntax error at '{snippet}' (character {}): {message}",
            token.start
        ))
    }

    fn expect(&mut self, kind: TokenKind, what: &str) -> Result<(), Diagnostic> {
        if *self.peek() == kind {
            self.advance();
            Ok(())
        } else {
            Err(self.error(format!("expected {what}")))
        }
    }

    fn set_operator(&self) -> Option<SetOp> {
        match self.peek() {
            TokenKind::Plus | TokenKind::Union => Some(SetOp::Union),
            TokenKind::Minus | TokenKind::Except => Some(SetOp::Except),
            TokenKind::Caret | TokenKind::Intersect => Some(SetOp::Intersect),
            _ => None,
        }
    }

    /// One expression, one level deeper than the caller.
    fn expression(&mut self) -> Result<Expr, Diagnostic> {
        let (nesting, depth) = (self.nesting, self.depth);
        self.nesting += 1;
        self.depth += 1;
        let result = self.chain();
        self.nesting = nesting;
        self.depth = depth;
        result
    }

    fn chain(&mut self) -> Result<Expr, Diagnostic> {
        // The whole query is the first level; only what it nests counts.
        if self.nesting > MAX_NESTING + 1 {
            return Err(self.error(format!(
                "query nested too deeply: more than {MAX_NESTING} levels of parentheses, \
                 functions and lets"
            )));
        }
        let mut left = self.primary()?;
        while let Some(op) = self.set_operator() {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(self.error(format!(
                    "query nested too deeply: more than {MAX_DEPTH} chained operators and \
                     levels; list many targets in one set(...) instead of joining them with '+'"
                )));
            }
            self.advance();
            let right = self.primary()?;
            left = Expr::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
        Ok(left)
    }

    /// Takes a word where only a word can stand. A `-` glued to the following word
    /// (`-//foo`, `-1`) is part of the word here, not the except operator.
    fn take_word(&mut self) -> Option<(String, bool)> {
        match self.peek().clone() {
            TokenKind::Word { text, quoted } => {
                self.advance();
                Some((text, quoted))
            }
            TokenKind::Minus => {
                let minus_end = self.token(self.pos).end;
                let next = self.token(self.pos + 1).clone();
                match next.kind {
                    TokenKind::Word {
                        text,
                        quoted: false,
                    } if next.start == minus_end => {
                        self.advance();
                        self.advance();
                        Some((format!("-{text}"), false))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn primary(&mut self) -> Result<Expr, Diagnostic> {
        match self.peek() {
            TokenKind::LParen => {
                self.advance();
                let inner = self.expression()?;
                self.expect(TokenKind::RParen, "')'")?;
                Ok(inner)
            }
            TokenKind::Let => self.let_expression(),
            TokenKind::Set => self.set_expression(),
            TokenKind::Word { quoted: false, .. } if *self.peek_next() == TokenKind::LParen => {
                self.call()
            }
            _ => {
                let start = self.pos;
                let Some((text, quoted)) = self.take_word() else {
                    return Err(self.error("expected an expression"));
                };
                match text.strip_prefix('$') {
                    Some(name) if !quoted => self.variable(start, name),
                    _ => Ok(Expr::Pattern(text)),
                }
            }
        }
    }

    fn variable(&self, token: usize, name: &str) -> Result<Expr, Diagnostic> {
        if self.scopes.iter().any(|bound| bound == name) {
            Ok(Expr::Var(name.to_owned()))
        } else {
            Err(self.error_at(
                token,
                format!("undefined variable '${name}'; bind it with 'let {name} = ... in ...'"),
            ))
        }
    }

    fn let_expression(&mut self) -> Result<Expr, Diagnostic> {
        self.advance();
        let name = match self.peek() {
            TokenKind::Word {
                text,
                quoted: false,
            } if is_variable_name(text) => text.clone(),
            TokenKind::Word { text, .. } if text.starts_with('$') => {
                return Err(self.error(format!(
                    "expected a variable name after 'let' (write 'let {} = ...' and refer to it as '{text}')",
                    &text[1..]
                )));
            }
            _ => return Err(self.error("expected a variable name after 'let'")),
        };
        self.advance();
        self.expect(TokenKind::Equals, "'=' after the variable name")?;
        let value = self.expression()?;
        self.expect(TokenKind::In, "'in'")?;
        self.scopes.push(name.clone());
        let body = self.expression();
        self.scopes.pop();
        Ok(Expr::Let {
            name,
            value: Box::new(value),
            body: Box::new(body?),
        })
    }

    fn set_expression(&mut self) -> Result<Expr, Diagnostic> {
        self.advance();
        self.expect(TokenKind::LParen, "'(' after 'set'")?;
        let mut words = Vec::new();
        while let Some((word, _)) = self.take_word() {
            words.push(word);
        }
        self.expect(TokenKind::RParen, "a word or ')'")?;
        Ok(Expr::Set(words))
    }

    fn call(&mut self) -> Result<Expr, Diagnostic> {
        let TokenKind::Word { text: name, .. } = self.peek().clone() else {
            return Err(self.error("expected a function name"));
        };
        let Some(&(name, usage)) = FUNCTIONS.iter().find(|(f, _)| *f == name) else {
            let hint = did_you_mean(&name, FUNCTIONS.iter().map(|(f, _)| *f))
                .map(|f| format!("; did you mean '{f}'?"))
                .unwrap_or_default();
            return Err(self.error(format!("unknown function '{name}'{hint}")));
        };
        self.advance(); // the name
        self.advance(); // the '('
        let mut args = Args {
            parser: self,
            name,
            usage,
            given: 0,
        };
        let expr = match name {
            "allpaths" => Expr::AllPaths {
                from: args.expr()?,
                to: args.expr()?,
            },
            "allrdeps" => Expr::AllRdeps {
                of: args.expr()?,
                depth: args.optional_depth()?,
            },
            "attr" => Expr::Attr {
                name: args.word("an attribute name")?,
                pattern: args.word("a regular expression")?,
                of: args.expr()?,
            },
            "buildfiles" => Expr::BuildFiles(args.expr()?),
            "deps" => Expr::Deps {
                of: args.expr()?,
                depth: args.optional_depth()?,
            },
            "filter" => Expr::Filter {
                pattern: args.word("a regular expression")?,
                of: args.expr()?,
            },
            "kind" => Expr::Kind {
                pattern: args.word("a regular expression")?,
                of: args.expr()?,
            },
            "labels" => Expr::Labels {
                attr: args.word("an attribute name")?,
                of: args.expr()?,
            },
            "rdeps" => Expr::Rdeps {
                universe: args.expr()?,
                of: args.expr()?,
                depth: args.optional_depth()?,
            },
            "somepath" => Expr::SomePath {
                from: args.expr()?,
                to: args.expr()?,
            },
            "loadfiles" => Expr::LoadFiles(args.expr()?),
            "siblings" => Expr::Siblings(args.expr()?),
            "same_pkg_direct_rdeps" => Expr::SamePkgDirectRdeps(args.expr()?),
            "visible" => Expr::Visible {
                predicate: args.expr()?,
                of: args.expr()?,
            },
            "rbuildfiles" => {
                let mut paths = vec![args.word("a file path")?];
                while *args.parser.peek() == TokenKind::Comma {
                    paths.push(args.word("a file path")?);
                }
                Expr::RBuildFiles(paths)
            }
            _ => Expr::Tests(args.expr()?),
        };
        args.finish()?;
        Ok(expr)
    }
}

fn is_variable_name(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Reads the arguments of one function call in order, reporting count and type mistakes
/// against the function's usage.
struct Args<'p> {
    parser: &'p mut Parser,
    name: &'static str,
    usage: &'static str,
    given: usize,
}

impl Args<'_> {
    fn too_few(&self) -> Diagnostic {
        self.parser.error(format!(
            "too few arguments to {}(); expected {}",
            self.name, self.usage
        ))
    }

    /// Consumes the ',' before every argument but the first.
    fn separator(&mut self) -> Result<(), Diagnostic> {
        match self.parser.peek() {
            TokenKind::RParen => Err(self.too_few()),
            TokenKind::Comma if self.given > 0 => {
                self.parser.advance();
                if *self.parser.peek() == TokenKind::RParen {
                    return Err(self.too_few());
                }
                Ok(())
            }
            _ if self.given == 0 => Ok(()),
            _ => Err(self.parser.error("expected ',' or ')'")),
        }
    }

    fn expr(&mut self) -> Result<Box<Expr>, Diagnostic> {
        self.separator()?;
        let expr = self.parser.expression()?;
        self.given += 1;
        Ok(Box::new(expr))
    }

    fn word(&mut self, what: &str) -> Result<String, Diagnostic> {
        self.separator()?;
        let start = self.parser.pos;
        let position = self.given + 1;
        let Some((word, _)) = self.parser.take_word() else {
            return Err(self.parser.error(format!(
                "expected {what} (a word) as argument {position} of {}()",
                self.name
            )));
        };
        if *self.parser.peek() == TokenKind::LParen {
            return Err(self.parser.error_at(
                start,
                format!(
                    "argument {position} of {}() must be a word ({what}), not an expression; \
                     expected {}",
                    self.name, self.usage
                ),
            ));
        }
        self.given += 1;
        Ok(word)
    }

    fn optional_depth(&mut self) -> Result<Option<u32>, Diagnostic> {
        if *self.parser.peek() != TokenKind::Comma {
            return Ok(None);
        }
        self.parser.advance();
        let start = self.parser.pos;
        let depth = self
            .parser
            .take_word()
            .and_then(|(word, _)| word.parse::<u32>().ok());
        match depth {
            Some(depth) => {
                self.given += 1;
                Ok(Some(depth))
            }
            None => Err(self.parser.error_at(
                start,
                format!(
                    "expected a depth (a non-negative integer) as argument {} of {}()",
                    self.given + 1,
                    self.name
                ),
            )),
        }
    }

    fn finish(self) -> Result<(), Diagnostic> {
        match self.parser.peek() {
            TokenKind::RParen => {
                self.parser.advance();
                Ok(())
            }
            TokenKind::Comma => Err(self.parser.error(format!(
                "too many arguments to {}(); expected {}",
                self.name, self.usage
            ))),
            _ => Err(self.parser.error("expected ',' or ')'")),
        }
    }
}

/// Prints the expression back as query text, with every set operation parenthesized: handy
/// for logs and for seeing how a query was grouped.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let depth = |d: &Option<u32>| d.map(|d| format!(", {d}")).unwrap_or_default();
        match self {
            Expr::Pattern(word) => write!(f, "{}", Word(word)),
            Expr::Var(name) => write!(f, "${name}"),
            // Parenthesized because `let` extends as far right as it can.
            Expr::Let { name, value, body } => write!(f, "(let {name} = {value} in {body})"),
            Expr::Set(words) => {
                let words: Vec<String> = words.iter().map(|w| Word(w).to_string()).collect();
                write!(f, "set({})", words.join(" "))
            }
            Expr::Binary { op, left, right } => {
                let op = match op {
                    SetOp::Union => "+",
                    SetOp::Except => "-",
                    SetOp::Intersect => "^",
                };
                write!(f, "({left} {op} {right})")
            }
            Expr::Deps { of, depth: d } => write!(f, "deps({of}{})", depth(d)),
            Expr::Rdeps {
                universe,
                of,
                depth: d,
            } => write!(f, "rdeps({universe}, {of}{})", depth(d)),
            Expr::AllRdeps { of, depth: d } => write!(f, "allrdeps({of}{})", depth(d)),
            Expr::SomePath { from, to } => write!(f, "somepath({from}, {to})"),
            Expr::AllPaths { from, to } => write!(f, "allpaths({from}, {to})"),
            Expr::Kind { pattern, of } => write!(f, "kind({}, {of})", Word(pattern)),
            Expr::Attr { name, pattern, of } => {
                write!(f, "attr({}, {}, {of})", Word(name), Word(pattern))
            }
            Expr::Filter { pattern, of } => write!(f, "filter({}, {of})", Word(pattern)),
            Expr::Labels { attr, of } => write!(f, "labels({}, {of})", Word(attr)),
            Expr::Tests(of) => write!(f, "tests({of})"),
            Expr::BuildFiles(of) => write!(f, "buildfiles({of})"),
            Expr::LoadFiles(of) => write!(f, "loadfiles({of})"),
            Expr::RBuildFiles(paths) => {
                let paths: Vec<String> = paths.iter().map(|p| Word(p).to_string()).collect();
                write!(f, "rbuildfiles({})", paths.join(", "))
            }
            Expr::Siblings(of) => write!(f, "siblings({of})"),
            Expr::Visible { predicate, of } => write!(f, "visible({predicate}, {of})"),
            Expr::SamePkgDirectRdeps(of) => write!(f, "same_pkg_direct_rdeps({of})"),
        }
    }
}

/// A word, quoted when it would not lex back as the same single word.
struct Word<'a>(&'a str);

impl fmt::Display for Word<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = matches!(
            tokenize(self.0).as_deref(),
            Ok([Token { kind: TokenKind::Word { text, quoted: false }, .. }, _]) if text == self.0
        ) && !self.0.starts_with('$');
        if plain {
            f.write_str(self.0)
        } else if self.0.contains('"') {
            write!(f, "'{}'", self.0)
        } else {
            write!(f, "\"{}\"", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parse, printed fully parenthesized.
    /// Also checks that the printed form parses back to the same tree.
    fn shape(text: &str) -> String {
        let expr = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let printed = expr.to_string();
        assert_eq!(parse(&printed).as_ref(), Ok(&expr), "{printed}");
        printed
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(expr) => panic!("{text} parsed as {expr}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn nesting_and_chains_are_limited() {
        // Forge parses queries on a thread with this stack (see cli::run); at the limits the
        // parser recurses deeper than a test thread's 2 MiB allow.
        std::thread::Builder::new()
            .stack_size(crate::core::nesting::STARLARK_STACK_BYTES)
            .spawn(|| {
                let nested = |n: usize| format!("{}//a{}", "deps(".repeat(n), ")".repeat(n));
                assert!(parse(&nested(MAX_NESTING)).is_ok());
                assert!(error(&nested(MAX_NESTING + 1)).contains("query nested too deeply"));
                let chain = |n: usize| vec!["//a"; n].join(" + ");
                assert!(parse(&chain(MAX_DEPTH - 1)).is_ok());
                assert!(error(&chain(MAX_DEPTH + 1)).contains("in one set(...)"));
            })
            .expect("thread")
            .join()
            .expect("limits hold");
    }

    #[test]
    fn set_operators_share_one_precedence_and_associate_left() {
        assert_eq!(
            shape("//a + //b - //c ^ //d"),
            "(((//a + //b) - //c) ^ //d)"
        );
        assert_eq!(
            shape("//a union //b except //c intersect //d"),
            "(((//a + //b) - //c) ^ //d)"
        );
        assert_eq!(shape("//a - (//b - //c)"), "(//a - (//b - //c))");
        assert_eq!(shape("//a ^ //b + //c"), "((//a ^ //b) + //c)");
    }

    #[test]
    fn hyphens_need_spaces_to_be_operators() {
        assert_eq!(parse("//a-b").unwrap(), Expr::Pattern("//a-b".into()));
        assert_eq!(shape("//a - //b"), "(//a - //b)");
        assert_eq!(shape("//a -//b"), "(//a - //b)");
        // Where only a word can stand, a glued '-' belongs to the word.
        assert_eq!(parse("-//a").unwrap(), Expr::Pattern("-//a".into()));
        assert_eq!(shape("//x + -//a"), "(//x + \"-//a\")");
        assert_eq!(shape("set(//a -//b)"), "set(//a \"-//b\")");
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(parse("'//a:b+c'").unwrap(), Expr::Pattern("//a:b+c".into()));
        assert_eq!(parse("\"let\"").unwrap(), Expr::Pattern("let".into()));
        assert_eq!(shape("//a:b+c"), "(//a:b + c)");
        assert_eq!(
            shape("@repo//x:y + :all + //p:*"),
            "((@repo//x:y + :all) + //p:*)"
        );
        assert_eq!(shape("set()"), "set()");
        assert_eq!(shape("set(//a 'b c')"), "set(//a \"b c\")");
    }

    #[test]
    fn functions_parse_their_argument_kinds() {
        assert_eq!(
            parse("deps(//a, 2)").unwrap(),
            Expr::Deps {
                of: Box::new(Expr::Pattern("//a".into())),
                depth: Some(2)
            }
        );
        assert_eq!(shape("deps(//a)"), "deps(//a)");
        assert_eq!(shape("rdeps(//..., //a, 0)"), "rdeps(//..., //a, 0)");
        assert_eq!(shape("allrdeps(//a)"), "allrdeps(//a)");
        assert_eq!(
            shape("somepath(//a, //b + //c)"),
            "somepath(//a, (//b + //c))"
        );
        assert_eq!(shape("allpaths(//a,//b)"), "allpaths(//a, //b)");
        assert_eq!(
            shape("kind('.*test rule', //...)"),
            "kind(\".*test rule\", //...)"
        );
        assert_eq!(
            shape("attr(tags, '\\[.*manual.*\\]', //...)"),
            "attr(tags, \"\\[.*manual.*\\]\", //...)"
        );
        assert_eq!(shape("filter(gen, //...)"), "filter(gen, //...)");
        assert_eq!(shape("labels(srcs, //a)"), "labels(srcs, //a)");
        assert_eq!(shape("tests(//a:all)"), "tests(//a:all)");
        assert_eq!(shape("buildfiles(deps(//a))"), "buildfiles(deps(//a))");
        assert_eq!(shape("deps (//a)"), "deps(//a)");
        assert_eq!(shape("siblings(//a)"), "siblings(//a)");
        assert_eq!(shape("loadfiles(deps(//a))"), "loadfiles(deps(//a))");
        assert_eq!(
            shape("rbuildfiles(a/BUILD, tools/defs.bzl)"),
            "rbuildfiles(a/BUILD, tools/defs.bzl)"
        );
        assert_eq!(shape("visible(//a, //b:*)"), "visible(//a, //b:*)");
        assert_eq!(
            shape("same_pkg_direct_rdeps(//a:x)"),
            "same_pkg_direct_rdeps(//a:x)"
        );
    }

    #[test]
    fn let_binds_greedily_and_scopes_variables() {
        assert_eq!(
            shape("let v = //a + //b in $v - //c"),
            "(let v = (//a + //b) in ($v - //c))"
        );
        assert_eq!(
            shape("//x ^ let v = //a in deps($v)"),
            "(//x ^ (let v = //a in deps($v)))"
        );
        assert_eq!(
            shape("let a = //a in let b = $a in $a + $b"),
            "(let a = //a in (let b = $a in ($a + $b)))"
        );
        assert_eq!(
            shape("(let v = //a in $v) + //b"),
            "((let v = //a in $v) + //b)"
        );
        // A quoted '$' word is a pattern, not a variable.
        assert_eq!(parse("'$x'").unwrap(), Expr::Pattern("$x".into()));
    }

    #[test]
    fn syntax_errors_say_where_and_what_was_expected() {
        assert_eq!(
            error("deps(//a"),
            "syntax error at end of query (character 8): expected ',' or ')'"
        );
        assert_eq!(
            error("deps(//a //b)"),
            "syntax error at '//b)' (character 9): expected ',' or ')'"
        );
        assert_eq!(
            error("(//a + //b"),
            "syntax error at end of query (character 10): expected ')'"
        );
        assert_eq!(
            error("//a //b + //c //d"),
            "syntax error at '//b + //c' (character 4): \
             expected an operator (+, -, ^, union, except, intersect) or the end of the query"
        );
        assert_eq!(
            error(""),
            "syntax error at end of query (character 0): expected an expression"
        );
        assert_eq!(
            error("//a + )"),
            "syntax error at ')' (character 6): expected an expression"
        );
        assert_eq!(
            error("//a + in"),
            "syntax error at 'in' (character 6): expected an expression"
        );
        assert_eq!(
            error("let v //a in $v"),
            "syntax error at '//a in $v' (character 6): expected '=' after the variable name"
        );
        assert_eq!(
            error("let v = //a $v"),
            "syntax error at '$v' (character 12): expected 'in'"
        );
        assert_eq!(
            error("let $v = //a in $v"),
            "syntax error at '$v = //a' (character 4): expected a variable name after 'let' \
             (write 'let v = ...' and refer to it as '$v')"
        );
        assert_eq!(
            error("$v + //a"),
            "syntax error at '$v + //a' (character 0): undefined variable '$v'; \
             bind it with 'let v = ... in ...'"
        );
        assert_eq!(
            error("(let v = //a in $v) + $v"),
            "syntax error at '$v' (character 22): undefined variable '$v'; \
             bind it with 'let v = ... in ...'"
        );
        assert_eq!(
            error("set(//a deps(//b))"),
            "syntax error at '(//b)' (character 12): expected a word or ')'"
        );
    }

    #[test]
    fn unknown_functions_suggest_a_known_one() {
        assert_eq!(
            error("dep(//a)"),
            "syntax error at 'dep(//a' (character 0): unknown function 'dep'; did you mean 'deps'?"
        );
        assert_eq!(
            error("frobnicate(//a)"),
            "syntax error at 'frobnicate(//a' (character 0): unknown function 'frobnicate'"
        );
    }

    #[test]
    fn argument_counts_and_kinds_are_checked() {
        assert_eq!(
            error("deps()"),
            "syntax error at ')' (character 5): too few arguments to deps(); expected deps(expr[, depth])"
        );
        assert_eq!(
            error("deps(//a, 1, 2)"),
            "syntax error at ', 2)' (character 11): too many arguments to deps(); \
             expected deps(expr[, depth])"
        );
        assert_eq!(
            error("somepath(//a)"),
            "syntax error at ')' (character 12): too few arguments to somepath(); \
             expected somepath(from, to)"
        );
        assert_eq!(
            error("somepath(//a,)"),
            "syntax error at ')' (character 13): too few arguments to somepath(); \
             expected somepath(from, to)"
        );
        assert_eq!(
            error("attr(tags, //a)"),
            "syntax error at ')' (character 14): too few arguments to attr(); \
             expected attr(name, pattern, expr)"
        );
        assert_eq!(
            error("deps(//a, x)"),
            "syntax error at 'x)' (character 10): \
             expected a depth (a non-negative integer) as argument 2 of deps()"
        );
        assert_eq!(
            error("deps(//a, -1)"),
            "syntax error at '-1)' (character 10): \
             expected a depth (a non-negative integer) as argument 2 of deps()"
        );
        assert_eq!(
            error("deps(//a, 99999999999)"),
            "syntax error at '99999999999)' (character 10): \
             expected a depth (a non-negative integer) as argument 2 of deps()"
        );
        assert_eq!(
            error("kind(deps(//a), //b)"),
            "syntax error at 'deps(//a' (character 5): argument 1 of kind() must be a word \
             (a regular expression), not an expression; expected kind(pattern, expr)"
        );
        assert_eq!(
            error("kind((rule), //b)"),
            "syntax error at '(rule)' (character 5): \
             expected a regular expression (a word) as argument 1 of kind()"
        );
    }
}

/// Properties over generated queries: parsing never panics; what parses prints in a form
/// that parses back to the same tree; well-formed queries always parse.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Well-formed query text.
    fn query() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            prop::sample::select(vec!["//a:b", "//pkg/...", ":all", "//x", "@r//y:z", "-//n"])
                .prop_map(str::to_owned),
            Just("set(//a //b:c)".to_owned()),
        ];
        leaf.prop_recursive(6, 48, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| format!("deps({e})")),
                (inner.clone(), 0u32..5).prop_map(|(e, n)| format!("deps({e}, {n})")),
                (inner.clone(), inner.clone()).prop_map(|(u, e)| format!("rdeps({u}, {e})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("somepath({a}, {b})")),
                inner.clone().prop_map(|e| format!("kind(\"rule\", {e})")),
                inner
                    .clone()
                    .prop_map(|e| format!("attr(name, 'x.*', {e})")),
                inner.clone().prop_map(|e| format!("tests({e})")),
                inner.clone().prop_map(|e| format!("({e})")),
                (
                    inner.clone(),
                    prop::sample::select(vec!["+", "-", "^", "union", "except", "intersect"]),
                    inner.clone()
                )
                    .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
                (inner.clone(), inner).prop_map(|(v, b)| format!("let v = {v} in {b} + $v")),
            ]
        })
    }

    /// Text made of query tokens in any order, mostly malformed.
    fn query_like() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "deps(",
            "rdeps(",
            "allpaths(",
            ")",
            "(",
            ",",
            "+",
            "-",
            "^",
            "//a:b",
            "//...",
            "set(",
            "let ",
            "x",
            " = ",
            " in ",
            "$x",
            "kind(",
            "2",
            " ",
            "\"q",
            "'",
            "union",
            "except",
            "é",
            "\\",
        ]);
        prop::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

        #[test]
        fn well_formed_queries_parse_and_round_trip(text in query()) {
            let expr = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(parse(&expr.to_string()), Ok(expr));
        }

        #[test]
        fn any_query_text_parses_or_is_one_syntax_error(
            text in prop_oneof![query_like(), any::<String>()]
        ) {
            match parse(&text) {
                Ok(expr) => prop_assert_eq!(parse(&expr.to_string()), Ok(expr)),
                Err(e) => prop_assert!(!e.message.is_empty() && !e.message.contains('\n'), "{}", e.message),
            }
        }
    }
}
