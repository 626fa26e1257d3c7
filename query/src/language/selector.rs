//! Parsing selectors.
//!
//! ```text
//! selector  = profile_type [ "{" [ matcher { "," matcher } [ "," ] ] "}" ]
//! matcher   = label_name op string
//! op        = "=" | "!=" | "=~" | "!~"
//! string    = '"' … '"' | "'" … "'" | "`" … "`"   (the first two with \" \' \\ \n \t escapes)
//! ```
//!
//! Whitespace is allowed between tokens. The profile type is Parca's
//! `name:sample_type:sample_unit:period_type:period_unit[:delta]`.

use std::fmt;

use strata_engine::{LabelMatcher, MatchOp, ProfileType};

/// A parsed selector: a profile type and the label matchers that must all hold.
#[derive(Clone, Debug)]
pub struct Selector {
    /// The profile type.
    pub profile_type: ProfileType,
    /// The matchers.
    pub matchers: Vec<LabelMatcher>,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.profile_type)?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            strata_engine::write_label_name(f, m.name())?;
            write!(f, "{}\"", m.op().as_str())?;
            // Only the escapes the parser knows; everything else as is.
            strata_engine::write_escaped(f, m.value())?;
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

impl std::str::FromStr for Selector {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        parse_selector(s)
    }
}

/// Why a selector does not parse, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("selector column {column}: {message}")]
pub struct ParseError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// 1-based column (in characters) of the problem.
    pub column: usize,
    /// What was wrong, e.g. `expected "=", "!=", "=~" or "!~", found "<"`.
    pub message: String,
}

/// Parses a selector.
pub fn parse_selector(input: &str) -> Result<Selector, ParseError> {
    let mut p = Parser { input, pos: 0 };
    p.skip_ws();
    let start = p.pos;
    while p.peek().is_some_and(|c| c != '{' && !c.is_whitespace()) {
        p.bump();
    }
    let text = &input[start..p.pos];
    if text.is_empty() {
        return Err(p.error_at(start, "expected a profile type".into()));
    }
    let profile_type: ProfileType = text.parse().map_err(|_| {
        p.error_at(
            start,
            format!(
                "{text:?} is not a profile type \
                 (name:sample_type:sample_unit:period_type:period_unit[:delta])"
            ),
        )
    })?;
    p.skip_ws();
    let mut matchers = Vec::new();
    if p.eat('{') {
        loop {
            p.skip_ws();
            if p.eat('}') {
                break;
            }
            matchers.push(p.matcher()?);
            p.skip_ws();
            if p.eat(',') {
                continue;
            }
            if p.eat('}') {
                break;
            }
            return Err(p.expected("\",\" or \"}\""));
        }
        p.skip_ws();
    }
    if p.peek().is_some() {
        return Err(p.expected("the end of the selector"));
    }
    Ok(Selector {
        profile_type,
        matchers,
    })
}

pub(super) struct Parser<'a> {
    pub input: &'a str,
    pub pos: usize,
}

impl Parser<'_> {
    pub fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    pub fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    pub fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    pub fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn error_at(&self, offset: usize, message: String) -> ParseError {
        ParseError {
            offset,
            column: self.input[..offset].chars().count() + 1,
            message,
        }
    }

    fn expected(&self, what: &str) -> ParseError {
        let found = match self.peek() {
            None => "the end".to_owned(),
            Some(c) => format!("{c:?}"),
        };
        self.error_at(self.pos, format!("expected {what}, found {found}"))
    }

    /// A label name, unquoted (`job`) or quoted (`"otel.scope.name"`, Prometheus 3's UTF-8
    /// names); `Ok(None)` (nothing consumed) when there is none here.
    pub fn any_label_name(&mut self) -> Result<Option<String>, ParseError> {
        if matches!(self.peek(), Some('"' | '\'' | '`')) {
            let at = self.pos;
            let name = self.string()?;
            if name.is_empty() {
                return Err(self.error_at(at, "a label name must not be empty".into()));
            }
            return Ok(Some(name));
        }
        Ok(self.label_name().map(str::to_owned))
    }

    /// An unquoted label name, or `None` (nothing consumed) when there is none here.
    pub fn label_name(&mut self) -> Option<&str> {
        let start = self.pos;
        let input = self.input;
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        {
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                self.bump();
            }
            Some(&input[start..self.pos])
        } else {
            None
        }
    }

    pub fn op(&mut self) -> Option<MatchOp> {
        let rest = &self.input[self.pos..];
        let (op, len) = if rest.starts_with("=~") {
            (MatchOp::Regex, 2)
        } else if rest.starts_with("!=") {
            (MatchOp::NotEqual, 2)
        } else if rest.starts_with("!~") {
            (MatchOp::NotRegex, 2)
        } else if rest.starts_with('=') {
            (MatchOp::Equal, 1)
        } else {
            return None;
        };
        self.pos += len;
        Some(op)
    }

    /// A quoted string; `Err` with the position of the problem.
    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        let quote = match self.peek() {
            Some(q @ ('"' | '\'' | '`')) => q,
            _ => return Err(self.expected("a quoted label value")),
        };
        self.bump();
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error_at(start, "unterminated string".into()));
            };
            self.bump();
            match c {
                c if c == quote => return Ok(out),
                '\\' if quote != '`' => {
                    let escaped = self.peek();
                    let value = match escaped {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some(e @ ('\\' | '"' | '\'')) => e,
                        _ => {
                            return Err(self.error_at(
                                self.pos - 1,
                                "unknown escape: use \\\\, \\\", \\', \\n or \\t".into(),
                            ));
                        }
                    };
                    self.bump();
                    out.push(value);
                }
                c => out.push(c),
            }
        }
    }

    fn matcher(&mut self) -> Result<LabelMatcher, ParseError> {
        let name_at = self.pos;
        let Some(name) = self.any_label_name()? else {
            return Err(self.expected("a label name"));
        };
        self.skip_ws();
        let Some(op) = self.op() else {
            return Err(self.expected("\"=\", \"!=\", \"=~\" or \"!~\""));
        };
        self.skip_ws();
        let value_at = self.pos;
        let value = self.string()?;
        LabelMatcher::new(name, op, value).map_err(|e| {
            let at = if matches!(op, MatchOp::Regex | MatchOp::NotRegex) {
                value_at
            } else {
                name_at
            };
            self.error_at(at, format!("invalid matcher: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta";

    #[test]
    fn parses_parca_selectors() {
        let s = parse_selector(&format!(
            " {CPU} {{ job = \"api\", env!='prod', pod=~`api-.*`, zone!~\"eu\\\"x\", }} "
        ))
        .unwrap();
        assert_eq!(s.profile_type.to_string(), CPU);
        let got: Vec<_> = s
            .matchers
            .iter()
            .map(|m| (m.name().to_owned(), m.op(), m.value().to_owned()))
            .collect();
        assert_eq!(
            got,
            [
                ("job".into(), MatchOp::Equal, "api".into()),
                ("env".into(), MatchOp::NotEqual, "prod".into()),
                ("pod".into(), MatchOp::Regex, "api-.*".into()),
                ("zone".into(), MatchOp::NotRegex, "eu\"x".into()),
            ]
        );
        assert!(parse_selector(CPU).unwrap().matchers.is_empty());
        assert!(
            parse_selector(&format!("{CPU}{{}}"))
                .unwrap()
                .matchers
                .is_empty()
        );
        // Display round-trips.
        let again = parse_selector(&s.to_string()).unwrap();
        assert_eq!(again.to_string(), s.to_string());
    }

    #[test]
    fn parses_quoted_utf8_label_names() {
        let s = parse_selector(&format!(
            r#"{CPU}{{"otel.scope.name"="com.grafana.pyroscope/python", 'a b'!~"x", job="j"}}"#
        ))
        .unwrap();
        let names: Vec<_> = s.matchers.iter().map(|m| m.name().to_owned()).collect();
        assert_eq!(names, ["otel.scope.name", "a b", "job"]);
        assert_eq!(
            s.to_string(),
            format!(
                r#"{CPU}{{"otel.scope.name"="com.grafana.pyroscope/python", "a b"!~"x", job="j"}}"#
            )
        );
        assert_eq!(
            parse_selector(&s.to_string()).unwrap().to_string(),
            s.to_string()
        );
        let empty = parse_selector(&format!(r#"{CPU}{{""="x"}}"#)).unwrap_err();
        assert!(empty.to_string().contains("must not be empty"), "{empty}");
    }

    #[test]
    fn errors_carry_positions() {
        let cases = [
            ("", 1, "expected a profile type"),
            ("{job=\"a\"}", 1, "expected a profile type"),
            ("cpu{job=\"a\"}", 1, "is not a profile type"),
            (
                &format!("{CPU}{{job<\"a\"}}"),
                54,
                "expected \"=\", \"!=\", \"=~\" or \"!~\", found '<'",
            ),
            (
                &format!("{CPU}{{job=a}}"),
                55,
                "expected a quoted label value, found 'a'",
            ),
            (&format!("{CPU}{{job=\"a}}"), 55, "unterminated string"),
            (
                &format!("{CPU}{{job=\"a\" x=\"b\"}}"),
                59,
                "expected \",\" or \"}\", found 'x'",
            ),
            (
                &format!("{CPU}{{1job=\"a\"}}"),
                51,
                "expected a label name, found '1'",
            ),
            (&format!("{CPU}{{job=~\"(\"}}"), 56, "invalid matcher"),
            (
                &format!("{CPU}{{job=\"a\"}} x"),
                60,
                "expected the end of the selector",
            ),
            (&format!("{CPU}{{job=\"\\q\"}}"), 56, "unknown escape"),
            (&format!("{CPU}{{job=\"a\""), 58, "found the end"),
        ];
        for (input, column, says) in cases {
            let err = parse_selector(input).unwrap_err();
            assert_eq!(err.column, column, "{input}: {err}");
            assert!(err.message.contains(says), "{input}: {err}");
        }
        // Columns count characters, not bytes.
        let err = parse_selector(&format!("{CPU}{{é=\"a\"}}")).unwrap_err();
        assert_eq!(err.column, 51);
        assert_eq!(err.offset, 50);
    }
}
