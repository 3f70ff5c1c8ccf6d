//! Query text in, tokens out, following Bazel's query lexer: words, quoted words, keywords,
//! `( ) , = + - ^`. Offsets are character (not byte) positions, for error messages.

use crate::core::Diagnostic;

#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum TokenKind {
    /// A word as written (without its quotes). Quoted words are never keywords, variable
    /// references or function names: quoting is how users write arbitrary target names.
    Word {
        text: String,
        quoted: bool,
    },
    LParen,
    RParen,
    Comma,
    Equals,
    Plus,
    Minus,
    Caret,
    Let,
    In,
    Set,
    Union,
    Except,
    Intersect,
    Eof,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Token {
    pub kind: TokenKind,
    /// Character offsets of the token in the query text, `start..end`.
    pub start: usize,
    pub end: usize,
}

/// Characters of an unquoted word, as Bazel's documentation lists them. `+` and `=` are
/// operators, so names containing them must be quoted (except in `@@repo+name` words).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(
            c,
            '*' | '/' | '@' | '.' | '-' | '_' | ':' | '$' | '~' | '[' | ']'
        )
}

fn keyword(word: &str) -> Option<TokenKind> {
    Some(match word {
        "let" => TokenKind::Let,
        "in" => TokenKind::In,
        "set" => TokenKind::Set,
        "union" => TokenKind::Union,
        "except" => TokenKind::Except,
        "intersect" => TokenKind::Intersect,
        _ => return None,
    })
}

/// Splits `text` into tokens, ending with `Eof`.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, Diagnostic> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let single = match c {
            '(' => Some(TokenKind::LParen),
            ')' => Some(TokenKind::RParen),
            ',' => Some(TokenKind::Comma),
            '=' => Some(TokenKind::Equals),
            '+' => Some(TokenKind::Plus),
            // A leading '-' is always the operator here; the parser glues it back onto an
            // adjacent word where only a word can stand.
            '-' => Some(TokenKind::Minus),
            '^' => Some(TokenKind::Caret),
            _ => None,
        };
        let kind = if let Some(kind) = single {
            i += 1;
            kind
        } else if c == '\'' || c == '"' {
            // Bazel has no escapes inside quotes: the word runs to the next matching quote.
            let Some(len) = chars[i + 1..].iter().position(|&q| q == c) else {
                return Err(Diagnostic::new(format!(
                    "syntax error at character {start}: unclosed quotation mark ({c}); \
                     the word must end with a matching {c}"
                )));
            };
            let text: String = chars[i + 1..i + 1 + len].iter().collect();
            i += len + 2;
            TokenKind::Word { text, quoted: true }
        } else if is_word_char(c) {
            let plus_allowed = chars[i..].starts_with(&['@', '@']);
            while i < chars.len() && (is_word_char(chars[i]) || (plus_allowed && chars[i] == '+')) {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            keyword(&text).unwrap_or(TokenKind::Word {
                text,
                quoted: false,
            })
        } else {
            return Err(Diagnostic::new(format!(
                "syntax error at character {start}: unexpected character '{}' \
                 (quote words that contain it)",
                c.escape_debug()
            )));
        };
        tokens.push(Token {
            kind,
            start,
            end: i,
        });
    }
    tokens.push(Token {
        kind: TokenKind::Eof,
        start: chars.len(),
        end: chars.len(),
    });
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    fn word(text: &str) -> TokenKind {
        TokenKind::Word {
            text: text.into(),
            quoted: false,
        }
    }

    #[test]
    fn words_take_pattern_characters() {
        assert_eq!(
            kinds("//pkg/...:* @repo//x:y-z.txt $v ~[a]"),
            vec![
                word("//pkg/...:*"),
                word("@repo//x:y-z.txt"),
                word("$v"),
                word("~[a]"),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn plus_and_equals_split_words_except_after_double_at() {
        assert_eq!(
            kinds("//a:b+c"),
            vec![word("//a:b"), TokenKind::Plus, word("c"), TokenKind::Eof]
        );
        assert_eq!(
            kinds("//a:b=c"),
            vec![word("//a:b"), TokenKind::Equals, word("c"), TokenKind::Eof]
        );
        assert_eq!(
            kinds("@@rules_foo+//x:y"),
            vec![word("@@rules_foo+//x:y"), TokenKind::Eof]
        );
    }

    #[test]
    fn quotes_keywords_and_punctuation() {
        assert_eq!(
            kinds(r#"let 'in' "a b"(),^-"#),
            vec![
                TokenKind::Let,
                TokenKind::Word {
                    text: "in".into(),
                    quoted: true
                },
                TokenKind::Word {
                    text: "a b".into(),
                    quoted: true
                },
                TokenKind::LParen,
                TokenKind::RParen,
                TokenKind::Comma,
                TokenKind::Caret,
                TokenKind::Minus,
                TokenKind::Eof
            ]
        );
        // A hyphen inside a word is part of it; at the start of one it is the operator.
        assert_eq!(
            kinds("//a-b -//c"),
            vec![word("//a-b"), TokenKind::Minus, word("//c"), TokenKind::Eof]
        );
    }

    #[test]
    fn offsets_count_characters() {
        let tokens = tokenize("é + //b").unwrap();
        assert_eq!((tokens[1].start, tokens[1].end), (2, 3));
        assert_eq!((tokens[2].start, tokens[2].end), (4, 7));
        assert_eq!(tokens[3].start, 7);
    }

    #[test]
    fn bad_input_is_a_diagnostic() {
        assert_eq!(
            tokenize("deps('//a)").unwrap_err().message,
            "syntax error at character 5: unclosed quotation mark ('); the word must end with a matching '"
        );
        assert_eq!(
            tokenize("//a:b!").unwrap_err().message,
            "syntax error at character 5: unexpected character '!' (quote words that contain it)"
        );
    }
}
