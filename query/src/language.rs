//! The query language: Parca's selector `<profile type>{label="v", l!="v", l=~"re", l!~"re"}`.
//!
//! - [`parse_selector`]: text → [`Selector`], or a [`ParseError`] that carries the position
//!   (byte offset, 1-based column) and says what was expected there;
//! - [`complete`]: what may be typed at a cursor position (profile type, label name, operator,
//!   label value), for the UI's autocomplete.

mod completion;
mod selector;

pub use completion::{Completion, CompletionContext, OPERATORS, complete};
pub use selector::{ParseError, Selector, parse_selector};
