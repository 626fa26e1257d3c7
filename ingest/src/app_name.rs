//! Pyroscope's application names: `app.cpu{env=prod,region=eu}` in `/ingest?name=`.

use crate::error::{Error, Result};

/// A parsed application name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppName {
    /// The application (becomes the `service_name` label, as Pyroscope does).
    pub service_name: String,
    /// The profile kind after the last `.` (`cpu`, `alloc_objects`, ...), if any.
    pub kind: Option<String>,
    /// The labels in braces, in order.
    pub labels: Vec<(String, String)>,
}

/// Parses `name{k=v,...}`; the braces are optional, values may not contain `,` or `}`.
pub fn parse_app_name(input: &str) -> Result<AppName> {
    let bad = |why: &str| Error::InvalidProfile(format!("application name {input:?}: {why}"));
    let (head, labels) = match input.split_once('{') {
        Some((head, rest)) => {
            let body = rest
                .strip_suffix('}')
                .ok_or_else(|| bad("missing closing '}'"))?;
            let labels = body
                .split(',')
                .filter(|kv| !kv.trim().is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').ok_or_else(|| bad("a label lacks '='"))?;
                    Ok((k.trim().to_owned(), v.trim().to_owned()))
                })
                .collect::<Result<Vec<_>>>()?;
            (head, labels)
        }
        None => (input, Vec::new()),
    };
    let head = head.trim();
    if head.is_empty() {
        return Err(bad("the application name is empty"));
    }
    let (service_name, kind) = match head.rsplit_once('.') {
        Some((app, kind)) if !app.is_empty() && !kind.is_empty() => {
            (app.to_owned(), Some(kind.to_owned()))
        }
        _ => (head.to_owned(), None),
    };
    Ok(AppName {
        service_name,
        kind,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pyroscope_names() {
        let a = parse_app_name("my.app.cpu{env=prod, region = eu}").unwrap();
        assert_eq!(a.service_name, "my.app");
        assert_eq!(a.kind.as_deref(), Some("cpu"));
        assert_eq!(
            a.labels,
            vec![
                ("env".into(), "prod".into()),
                ("region".into(), "eu".into())
            ]
        );
        let b = parse_app_name("plain").unwrap();
        assert_eq!(
            (b.service_name.as_str(), b.kind, b.labels.len()),
            ("plain", None, 0)
        );
        for (input, says) in [
            ("app.cpu{env=prod", "missing closing '}'"),
            ("app{env}", "a label lacks '='"),
            ("{a=b}", "the application name is empty"),
        ] {
            let err = parse_app_name(input).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidProfile(m) if m.contains(says)),
                "{input}: {err}"
            );
        }
    }
}
