//! Folded ("collapsed") stacks, as Pyroscope's `/ingest?format=folded` takes them: one stack a
//! line, frames root first separated by `;`, then a space and the value (`main;work;hash 12`).

use strata_engine::{Function, Labels, Location, ProfileType, SampleBatchBuilder, SampleRow};

use crate::error::{Error, Result};

/// One parsed line: frames leaf first, and the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldedStack {
    /// Function names, leaf (innermost) first.
    pub frames: Vec<String>,
    /// The value (samples, bytes, ...).
    pub value: i64,
}

/// Parses folded text. Blank lines are skipped; a line without a numeric value after its last
/// space, or with an empty frame, is an error naming the line.
pub fn parse_folded(text: &str) -> Result<Vec<FoldedStack>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let bad =
            |why: &str| Error::InvalidProfile(format!("folded line {}: {why}: {line:?}", n + 1));
        let (stack, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| bad("no value after the stack"))?;
        let value: i64 = value
            .trim()
            .parse()
            .map_err(|_| bad("the value is not an integer"))?;
        if stack.is_empty() {
            return Err(bad("the stack is empty"));
        }
        let mut frames: Vec<String> = stack.split(';').map(str::to_owned).collect();
        if frames.iter().any(String::is_empty) {
            return Err(bad("a frame is empty"));
        }
        frames.reverse();
        out.push(FoldedStack { frames, value });
    }
    Ok(out)
}

/// Adds folded stacks to `b` as samples of one profile type and series (zero values dropped).
pub fn folded_into(
    stacks: &[FoldedStack],
    profile_type: &ProfileType,
    labels: Labels,
    timestamp_ns: i64,
    duration_ns: i64,
    period: i64,
    b: &mut SampleBatchBuilder,
) {
    let pt = b.profile_type(profile_type);
    let series = b.series(labels);
    for s in stacks.iter().filter(|s| s.value != 0) {
        let locations: Vec<_> = s
            .frames
            .iter()
            .map(|name| {
                let function_id = b.function(Function {
                    name: name.clone(),
                    ..Default::default()
                });
                b.location(Location {
                    lines: vec![strata_engine::Line {
                        function_id,
                        line: 0,
                    }],
                    ..Default::default()
                })
            })
            .collect();
        let stack = b.stack(&locations);
        b.sample(SampleRow {
            profile_type: pt,
            series,
            timestamp_ns,
            duration_ns,
            period,
            stack,
            value: s.value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_root_first_lines_into_leaf_first_stacks() {
        let got = parse_folded("main;work;hash 12\n\nmain 3\r\nmain;with space;x 1\n").unwrap();
        assert_eq!(
            got[0],
            FoldedStack {
                frames: vec!["hash".into(), "work".into(), "main".into()],
                value: 12
            }
        );
        assert_eq!(got[1].frames, vec!["main"]);
        assert_eq!(got[2].frames, vec!["x", "with space", "main"]);
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err = parse_folded("a;b 1\na;b\n").unwrap_err();
        assert!(err.to_string().contains("folded line 2"), "{err}");
        for (input, says) in [
            ("a;;b 1", "folded line 1: a frame is empty"),
            (" 5", "folded line 1: the stack is empty"),
            ("a;b x", "folded line 1: the value is not an integer"),
        ] {
            let err = parse_folded(input).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidProfile(m) if m.contains(says)),
                "{input:?}: {err}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = parse_folded(&text);
        }

        #[test]
        fn round_trips(stacks in prop::collection::vec((prop::collection::vec("[a-z_:.]{1,8}", 1..6), any::<i64>()), 0..20)) {
            let text: String = stacks.iter().map(|(f, v)| format!("{} {v}\n", f.join(";"))).collect();
            let parsed = parse_folded(&text).unwrap();
            for ((frames, v), p) in stacks.iter().zip(&parsed) {
                let mut leaf_first = frames.clone();
                leaf_first.reverse();
                prop_assert_eq!(&p.frames, &leaf_first);
                prop_assert_eq!(p.value, *v);
            }
        }
    }
}
