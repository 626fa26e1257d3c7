//! Completion for the UI: what may be typed at a cursor position in a (possibly incomplete)
//! selector. The server answers the context with the store's profile types, label names or
//! values; operators are [`OPERATORS`].

use strata_engine::MatchOp;

use super::selector::Parser;

/// The four matcher operators, as suggestions.
pub const OPERATORS: [&str; 4] = ["=", "!=", "=~", "!~"];

/// What belongs at the cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompletionContext {
    /// A profile type (the cursor is in or before it).
    ProfileType,
    /// A label name inside `{…}`.
    LabelName,
    /// An operator after the label name.
    Operator {
        /// The label being matched.
        label: String,
    },
    /// A label value (inside its quotes, or where the opening quote goes).
    LabelValue {
        /// The label being matched.
        label: String,
        /// The operator before it.
        op: MatchOp,
    },
    /// After a complete matcher: `,` or `}`.
    Separator,
    /// Nothing (after the closing `}`).
    Nothing,
}

/// The completion at a cursor: the context and the part of the token already typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// What belongs at the cursor.
    pub context: CompletionContext,
    /// The token typed so far (without an opening quote).
    pub prefix: String,
    /// Byte offset where that token starts: a suggestion replaces `start..cursor`.
    pub start: usize,
}

/// The completion at byte offset `cursor` of `input` (clamped to the input, moved back to a
/// character boundary).
pub fn complete(input: &str, cursor: usize) -> Completion {
    let mut cursor = cursor.min(input.len());
    while !input.is_char_boundary(cursor) {
        cursor -= 1;
    }
    let text = &input[..cursor];
    let mut p = Parser {
        input: text,
        pos: 0,
    };
    let at = |context, start: usize| Completion {
        context,
        prefix: text[start..].to_owned(),
        start,
    };
    p.skip_ws();
    let start = p.pos;
    while p.peek().is_some_and(|c| c != '{' && !c.is_whitespace()) {
        p.bump();
    }
    if p.peek().is_none() {
        return at(CompletionContext::ProfileType, start);
    }
    p.skip_ws();
    if !p.eat('{') {
        return at(CompletionContext::Nothing, text.len());
    }
    loop {
        p.skip_ws();
        let name_start = p.pos;
        // A quoted name still open at the end is a name being typed.
        let Ok(label) = p.any_label_name().map(Option::unwrap_or_default) else {
            return at(CompletionContext::LabelName, name_start);
        };
        if p.peek().is_none() {
            return at(CompletionContext::LabelName, name_start);
        }
        if label.is_empty() {
            // `}` closes; anything else is not a selector any more.
            return at(CompletionContext::Nothing, text.len());
        }
        p.skip_ws();
        let op_start = p.pos;
        let op = p.op();
        // At the end, `=` or `!` may still grow into a two-character operator.
        let partial = &text[op_start..];
        if (p.peek().is_none() && (op.is_none() || partial == "=")) || partial == "!" {
            return at(CompletionContext::Operator { label }, op_start);
        }
        let Some(op) = op else {
            return at(CompletionContext::Nothing, text.len());
        };
        p.skip_ws();
        let value = CompletionContext::LabelValue {
            label: label.clone(),
            op,
        };
        let quote = match p.peek() {
            None => return at(value, p.pos),
            Some(q @ ('"' | '\'' | '`')) => q,
            Some(_) => return at(CompletionContext::Nothing, text.len()),
        };
        p.bump();
        let value_start = p.pos;
        let mut closed = false;
        while let Some(c) = p.peek() {
            p.bump();
            if c == '\\' && quote != '`' {
                p.bump();
            } else if c == quote {
                closed = true;
                break;
            }
        }
        if !closed {
            return at(value, value_start);
        }
        p.skip_ws();
        match p.peek() {
            None => return at(CompletionContext::Separator, p.pos),
            Some(',') => p.bump(),
            Some(_) => return at(CompletionContext::Nothing, text.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `|` marks the cursor.
    fn at(marked: &str) -> Completion {
        let cursor = marked.find('|').unwrap();
        complete(&marked.replace('|', ""), cursor)
    }

    #[test]
    fn contexts_at_every_kind_of_position() {
        use CompletionContext::*;
        let cases: Vec<(&str, CompletionContext, &str)> = vec![
            ("|", ProfileType, ""),
            ("proc|", ProfileType, "proc"),
            ("memory:alloc|{job=\"a\"}", ProfileType, "memory:alloc"),
            ("cpu{|", LabelName, ""),
            ("cpu{jo|", LabelName, "jo"),
            ("cpu{job=\"a\", |", LabelName, ""),
            ("cpu{job=\"a\",in|}", LabelName, "in"),
            ("cpu{job|", LabelName, "job"),
            (
                "cpu{job |",
                Operator {
                    label: "job".into(),
                },
                "",
            ),
            (
                "cpu{job!|",
                Operator {
                    label: "job".into(),
                },
                "!",
            ),
            (
                "cpu{job=|",
                Operator {
                    label: "job".into(),
                },
                "=",
            ),
            (
                "cpu{job=~|",
                LabelValue {
                    label: "job".into(),
                    op: MatchOp::Regex,
                },
                "",
            ),
            (
                "cpu{job= \"ap|",
                LabelValue {
                    label: "job".into(),
                    op: MatchOp::Equal,
                },
                "ap",
            ),
            (
                "cpu{job!=\"a\\\"b|",
                LabelValue {
                    label: "job".into(),
                    op: MatchOp::NotEqual,
                },
                "a\\\"b",
            ),
            ("cpu{job=\"api\" |", Separator, ""),
            ("cpu{job=\"api\"}|", Nothing, ""),
        ];
        for (marked, context, prefix) in cases {
            let c = at(marked);
            assert_eq!(
                (&c.context, c.prefix.as_str()),
                (&context, prefix),
                "{marked}"
            );
            assert_eq!(
                c.start + c.prefix.len(),
                marked.find('|').unwrap(),
                "{marked}"
            );
        }
    }

    #[test]
    fn cursor_out_of_range_or_inside_a_character_is_clamped() {
        assert_eq!(complete("cpu{é", 100).context, CompletionContext::Nothing);
        let c = complete("cpu{job=\"é", 10);
        assert_eq!(c.prefix, "");
    }
}
