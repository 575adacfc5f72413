//! A line-level editor for `database.max_connections` in the config.yaml text: it rewrites the
//! one value (or inserts one line) and leaves every other byte as it was, so comments, order,
//! quoting and line endings survive. A real YAML parser checks the input first and the result
//! afterwards: the edit is refused unless exactly `database.max_connections` changed.

use serde_json::Value;

use crate::plan::PlanError;

const EDIT_HINT: &str =
    "edit the ConfigMap by hand (`kubectl edit configmap`), or rewrite `database` as a block mapping";

/// One line of the text: its content (no line ending) and its ending (`\n`, `\r\n` or none).
struct Line<'a> {
    content: &'a str,
    ending: &'a str,
}

fn split_lines(text: &str) -> Vec<Line<'_>> {
    text.split_inclusive('\n')
        .map(|raw| {
            let content = raw.strip_suffix('\n').unwrap_or(raw);
            let content = content.strip_suffix('\r').unwrap_or(content);
            Line {
                content,
                ending: &raw[content.len()..],
            }
        })
        .collect()
}

fn indent(content: &str) -> usize {
    content.len() - content.trim_start_matches(' ').len()
}

/// Blank lines, comments and document markers carry no mapping entry.
fn is_structural_noise(content: &str) -> bool {
    let trimmed = content.trim();
    trimmed.is_empty()
        || trimmed.starts_with('#')
        || trimmed == "---"
        || trimmed == "..."
        || (indent(content) == 0 && trimmed.starts_with('%'))
}

/// Parses `key:` at the start of `content` (after the indentation): returns the unquoted key
/// and the byte offset just past the colon.
fn mapping_key(content: &str) -> Option<(String, usize)> {
    let start = indent(content);
    let rest = &content[start..];
    let (key, after_key) = match rest.chars().next()? {
        quote @ ('"' | '\'') => {
            let end = rest[1..].find(quote)? + 1;
            (rest[1..end].to_string(), end + 1)
        }
        _ => {
            // A plain key ends at the first `:` followed by a space, a tab or the line's end.
            let colon = rest
                .char_indices()
                .find(|(i, c)| *c == ':' && matches!(rest[i + 1..].chars().next(), None | Some(' ' | '\t')))?
                .0;
            (rest[..colon].trim_end().to_string(), colon)
        }
    };
    rest[after_key..]
        .starts_with(':')
        .then_some((key, start + after_key + 1))
}

/// Splits the text after a key's colon into (leading whitespace, value token, the rest:
/// trailing whitespace and comment).
fn split_value(after_colon: &str) -> (&str, &str, &str) {
    let lead = after_colon.len() - after_colon.trim_start_matches([' ', '\t']).len();
    let rest = &after_colon[lead..];
    let token_len = match rest.chars().next() {
        Some('"') => closing_quote(rest, '"').map_or(rest.len(), |end| end + 1),
        Some('\'') => closing_quote(rest, '\'').map_or(rest.len(), |end| end + 1),
        Some('#') | None => 0,
        _ => rest.find(" #").or_else(|| rest.find("\t#")).unwrap_or(rest.len()),
    };
    let token = rest[..token_len].trim_end_matches([' ', '\t']);
    (&after_colon[..lead], token, &rest[token.len()..])
}

fn closing_quote(text: &str, quote: char) -> Option<usize> {
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if quote == '"' && c == '\\' {
            chars.next();
        } else if c == quote {
            if quote == '\'' && chars.peek().map(|(_, c)| *c) == Some('\'') {
                chars.next();
            } else {
                return Some(i);
            }
        }
    }
    None
}

/// Parses YAML into JSON values; errors name only the position, never the text (the config may
/// hold secrets).
pub(super) fn parse_yaml(text: &str) -> Result<Value, PlanError> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_saphyr::from_str::<Value>(text).map_err(|e| {
        let position = e
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        PlanError::new(format!("config.yaml is not valid YAML{position}"), EDIT_HINT)
    })
}

/// The smallest indentation step used in the text (2 when nothing is indented).
fn indent_unit(lines: &[Line<'_>]) -> usize {
    lines
        .iter()
        .filter(|l| !is_structural_noise(l.content))
        .map(|l| indent(l.content))
        .filter(|i| *i > 0)
        .min()
        .unwrap_or(2)
}

/// Sets `database.max_connections` to `n`: returns the new text and the value before (`None`
/// when the key was absent or null).
///
/// # Errors
/// Invalid YAML, a root or `database` that is not a block mapping, a `max_connections` written
/// in a form this editor does not rewrite, or an edit that would change anything else.
pub fn set_max_connections(config_yaml: &str, n: u32) -> Result<(String, Option<String>), PlanError> {
    let original = parse_yaml(config_yaml)?;
    let database = match &original {
        Value::Null => None,
        Value::Object(root) => root.get("database"),
        _ => return Err(PlanError::new("config.yaml is not a mapping of keys", EDIT_HINT)),
    };
    let existing = match database {
        None | Some(Value::Null) => None,
        Some(Value::Object(db)) => db.get("max_connections"),
        Some(_) => {
            return Err(PlanError::new(
                "`database` in config.yaml is not a mapping",
                EDIT_HINT,
            ));
        }
    };
    let before = match existing {
        None | Some(Value::Null) => None,
        Some(Value::Number(v)) => Some(v.to_string()),
        Some(Value::String(v)) => Some(v.clone()),
        Some(Value::Bool(v)) => Some(v.to_string()),
        Some(_) => {
            return Err(PlanError::new(
                "`database.max_connections` in config.yaml is not a single value",
                EDIT_HINT,
            ));
        }
    };

    let lines = split_lines(config_yaml);
    let eol = if config_yaml.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let unit = indent_unit(&lines);
    let first = lines.iter().find(|l| !is_structural_noise(l.content));
    if first.is_some_and(|l| l.content.trim_start().starts_with(['{', '['])) {
        return Err(PlanError::new(
            "config.yaml is written as a flow mapping ({...})",
            EDIT_HINT,
        ));
    }
    let root_indent = first.map_or(0, |l| indent(l.content));
    let database_line = lines.iter().position(|l| {
        !is_structural_noise(l.content)
            && indent(l.content) == root_indent
            && mapping_key(l.content).is_some_and(|(k, _)| k == "database")
    });

    let mut out: Vec<String> = lines
        .iter()
        .map(|l| format!("{}{}", l.content, l.ending))
        .collect();
    let mut quote = None;
    match database_line {
        None => {
            if database.is_some() {
                return Err(PlanError::new(
                    "could not find the `database:` line in config.yaml",
                    EDIT_HINT,
                ));
            }
            if out.last().is_some_and(|l| !l.ends_with('\n')) {
                out.push(eol.to_string());
            }
            let pad = " ".repeat(root_indent);
            out.push(format!(
                "{pad}database:{eol}{pad}{}max_connections: {n}{eol}",
                " ".repeat(unit)
            ));
        }
        Some(db) => {
            let (_, colon) = mapping_key(lines[db].content).unwrap_or_default();
            let (_, value, _) = split_value(&lines[db].content[colon..]);
            // `database: &anchor` still starts a block; anything else inline (`{…}`, `*alias`) is
            // not something a line edit can rewrite.
            if !value.is_empty() && !value.starts_with('&') {
                // The inline value is not echoed: it may hold a password.
                return Err(PlanError::new(
                    "`database` in config.yaml is written inline (flow style or an alias), not as a block",
                    EDIT_HINT,
                ));
            }
            let block_end = (db + 1..lines.len())
                .find(|&i| !is_structural_noise(lines[i].content) && indent(lines[i].content) <= root_indent)
                .unwrap_or(lines.len());
            let child_indent = (db + 1..block_end)
                .map(|i| lines[i].content)
                .find(|c| !is_structural_noise(c))
                .map_or(root_indent + unit, indent);
            let key_line = (db + 1..block_end).find(|&i| {
                let c = lines[i].content;
                !is_structural_noise(c)
                    && indent(c) == child_indent
                    && mapping_key(c).is_some_and(|(k, _)| k == "max_connections")
            });
            match key_line {
                Some(i) => {
                    let (new_content, quoted) = rewrite_value(lines[i].content, n)?;
                    quote = quoted;
                    out[i] = format!("{new_content}{}", lines[i].ending);
                }
                None => {
                    let last = (db + 1..block_end)
                        .rev()
                        .find(|&i| {
                            !lines[i].content.trim().is_empty() && indent(lines[i].content) > root_indent
                        })
                        .unwrap_or(db);
                    if !lines[last].ending.ends_with('\n') {
                        out[last].push_str(eol);
                    }
                    out.insert(
                        last + 1,
                        format!("{}max_connections: {n}{eol}", " ".repeat(child_indent)),
                    );
                }
            }
        }
    }
    let new_text = out.concat();
    verify(&original, &new_text, n, quote)?;
    Ok((new_text, before))
}

/// Rewrites the value on a `max_connections:` line, keeping quotes and a trailing comment.
/// Returns the new line and the quote character used, if any.
fn rewrite_value(content: &str, n: u32) -> Result<(String, Option<char>), PlanError> {
    let (_, colon) = mapping_key(content).unwrap_or_default();
    let (lead, token, rest) = split_value(&content[colon..]);
    let quote = token.chars().next().filter(|c| *c == '"' || *c == '\'');
    if token.starts_with(['&', '*', '!', '{', '[', '|', '>']) {
        return Err(PlanError::new(
            format!("`database.max_connections` is written as {token}, which this tool does not rewrite"),
            EDIT_HINT,
        ));
    }
    let value = match quote {
        Some(q) => format!("{q}{n}{q}"),
        None => n.to_string(),
    };
    let lead = if lead.is_empty() { " " } else { lead };
    // A null value followed by a comment needs a space before the `#`.
    let rest = if token.is_empty() && rest.starts_with('#') {
        format!(" {rest}")
    } else {
        rest.to_string()
    };
    Ok((format!("{}{lead}{value}{rest}", &content[..colon]), quote))
}

/// The edited text must parse to the original document with only `database.max_connections`
/// set to `n` (a string when it was quoted).
fn verify(original: &Value, new_text: &str, n: u32, quote: Option<char>) -> Result<(), PlanError> {
    let refused = || {
        PlanError::new(
            "could not change database.max_connections without changing other parts of config.yaml",
            EDIT_HINT,
        )
    };
    let edited = parse_yaml(new_text).map_err(|_| refused())?;
    let mut expected = match original {
        Value::Null => serde_json::json!({}),
        other => other.clone(),
    };
    let root = expected.as_object_mut().ok_or_else(refused)?;
    let database = root.entry("database").or_insert(Value::Null);
    if database.is_null() {
        *database = serde_json::json!({});
    }
    let value = if quote.is_some() {
        Value::String(n.to_string())
    } else {
        Value::from(n)
    };
    database
        .as_object_mut()
        .ok_or_else(refused)?
        .insert("max_connections".into(), value);
    if edited == expected {
        Ok(())
    } else {
        Err(refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The lines of `new` that are not in `old` (old must be a subsequence of new, or the one
    /// line replaced).
    fn changed_lines(old: &str, new: &str) -> (Vec<String>, Vec<String>) {
        let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
        let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
        let prefix = old_lines
            .iter()
            .zip(&new_lines)
            .take_while(|(a, b)| a == b)
            .count();
        let suffix = old_lines[prefix..]
            .iter()
            .rev()
            .zip(new_lines[prefix..].iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        (
            old_lines[prefix..old_lines.len() - suffix]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            new_lines[prefix..new_lines.len() - suffix]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    }

    const CONFIG: &str = "# orchestrator settings\n\
server:\n  port: 8080   # http\n  workers: 4\n\n\
database:\n  host: postgres.llm-orchestrator.svc\n  # pool size per pod\n  max_connections: 20  # keep below db max\n  timeout: 30s\n\n\
# model routing\nmodels:\n  - name: a\n    weight: 1\n";

    #[test]
    fn edits_exactly_one_line_keeping_the_comment() {
        let (new, before) = set_max_connections(CONFIG, 50).unwrap();
        assert_eq!(before.as_deref(), Some("20"));
        let (removed, added) = changed_lines(CONFIG, &new);
        assert_eq!(removed, ["  max_connections: 20  # keep below db max\n"]);
        assert_eq!(added, ["  max_connections: 50  # keep below db max\n"]);
        assert_eq!(new.len(), CONFIG.len());
    }

    #[test]
    fn adds_the_key_under_database_when_absent() {
        let text = "database:\n    host: db\n    port: 5432\nserver:\n    port: 1\n";
        let (new, before) = set_max_connections(text, 30).unwrap();
        assert_eq!(before, None);
        assert_eq!(
            new,
            "database:\n    host: db\n    port: 5432\n    max_connections: 30\nserver:\n    port: 1\n"
        );
        let (removed, added) = changed_lines(text, &new);
        assert!(removed.is_empty());
        assert_eq!(added.len(), 1);
    }

    #[test]
    fn adds_after_nested_blocks_and_keeps_following_comments() {
        let text = "database:\n  host: db\n  options:\n    ssl: true\n\n# next section\nserver: {}\n";
        let (new, _) = set_max_connections(text, 12).unwrap();
        assert_eq!(
            new,
            "database:\n  host: db\n  options:\n    ssl: true\n  max_connections: 12\n\n# next section\nserver: {}\n"
        );
    }

    #[test]
    fn adds_a_database_section_when_absent() {
        let (new, before) = set_max_connections("server:\n  port: 80", 10).unwrap();
        assert_eq!(before, None);
        assert_eq!(new, "server:\n  port: 80\ndatabase:\n  max_connections: 10\n");
        assert_eq!(
            set_max_connections("", 5).unwrap().0,
            "database:\n  max_connections: 5\n"
        );
        assert_eq!(
            set_max_connections("# only a comment\n", 5).unwrap().0,
            "# only a comment\ndatabase:\n  max_connections: 5\n"
        );
    }

    #[test]
    fn fills_an_empty_database_section() {
        let (new, _) = set_max_connections("database:\nserver:\n  port: 1\n", 7).unwrap();
        assert_eq!(new, "database:\n  max_connections: 7\nserver:\n  port: 1\n");
    }

    #[test]
    fn keeps_quotes_and_crlf() {
        let text = "database:\r\n  max_connections: \"20\"\r\n  host: 'db'\r\n";
        let (new, before) = set_max_connections(text, 40).unwrap();
        assert_eq!(before.as_deref(), Some("20"));
        assert_eq!(new, "database:\r\n  max_connections: \"40\"\r\n  host: 'db'\r\n");
        let (new, _) = set_max_connections("database:\r\n  host: db\r\n", 40).unwrap();
        assert_eq!(new, "database:\r\n  host: db\r\n  max_connections: 40\r\n");
        let (new, _) = set_max_connections("database:\n  'max_connections': '3'\n", 4).unwrap();
        assert_eq!(new, "database:\n  'max_connections': '4'\n");
    }

    #[test]
    fn null_value_with_comment() {
        let (new, before) = set_max_connections("database:\n  max_connections: # unset\n", 9).unwrap();
        assert_eq!(before, None);
        assert_eq!(new, "database:\n  max_connections: 9 # unset\n");
    }

    #[test]
    fn only_the_database_key_is_touched() {
        // A max_connections elsewhere (another section, a nested mapping) stays as it is.
        let text = "cache:\n  max_connections: 5\ndatabase:\n  replica:\n    max_connections: 7\n  max_connections: 8\n";
        let (new, before) = set_max_connections(text, 9).unwrap();
        assert_eq!(before.as_deref(), Some("8"));
        assert_eq!(
            new,
            "cache:\n  max_connections: 5\ndatabase:\n  replica:\n    max_connections: 7\n  max_connections: 9\n"
        );
    }

    #[test]
    fn refuses_what_it_cannot_edit_safely() {
        let cases = [
            ("database: [unclosed\n", "config.yaml is not valid YAML"),
            ("- a\n- b\n", "config.yaml is not a mapping of keys"),
            (
                "database: postgres\n",
                "`database` in config.yaml is not a mapping",
            ),
            (
                "{database: {max_connections: 1}}\n",
                "config.yaml is written as a flow mapping",
            ),
            (
                "database: {max_connections: 1}\n",
                "`database` in config.yaml is written inline",
            ),
            (
                "database:\n  max_connections:\n    a: 1\n",
                "`database.max_connections` in config.yaml is not a single value",
            ),
            (
                "database:\n  max_connections: !!str 5\n",
                "`database.max_connections` is written as !!str",
            ),
        ];
        for (text, message) in cases {
            let err = set_max_connections(text, 10).unwrap_err();
            assert!(err.message.starts_with(message), "{text:?}: {}", err.message);
        }
    }

    #[test]
    fn one_line_diff_across_layouts() {
        let texts = [
            "---\ndatabase:   # db settings\n  max_connections: 1\n",
            "database: &db\n  max_connections: 1\n  host: x\n",
            "database:\n  init: |\n    select 1;\n    # not a comment\n  max_connections: 1\n",
            "\"database\":\n  \"max_connections\": 1\n",
            "database:\n\tmax_connections: 1\n",
            "database:\n  max_connections:\t1\t# tabbed\n",
            "a: 1\ndatabase:\n  max_connections: 1\n...\n",
        ];
        for text in texts {
            let Ok((new, before)) = set_max_connections(text, 64) else {
                // Tabs as indentation are not YAML: refusing is the right answer.
                assert!(text.contains("\n\t"), "{text:?}");
                continue;
            };
            assert_eq!(before.as_deref(), Some("1"), "{text:?}");
            let (removed, added) = changed_lines(text, &new);
            assert_eq!((removed.len(), added.len()), (1, 1), "{text:?} -> {new:?}");
            assert_eq!(removed[0].replacen('1', "64", 1), added[0], "{text:?}");
            assert_eq!(read_back(&new), Some(64));
        }
    }

    #[test]
    fn a_value_shared_through_an_alias_is_refused() {
        // Editing the anchored mapping would also change `replica`, which merges it.
        let text = "database: &db\n  max_connections: 1\n  host: x\nreplica:\n  <<: *db\n";
        let err = set_max_connections(text, 64).unwrap_err();
        assert!(
            err.message
                .starts_with("could not change database.max_connections without changing other parts")
        );
    }

    #[test]
    fn block_scalar_content_is_never_edited() {
        let text = "database:\n  init: |\n    max_connections: 5\n  host: x\n";
        let (new, before) = set_max_connections(text, 8).unwrap();
        assert_eq!(before, None);
        assert_eq!(
            new,
            "database:\n  init: |\n    max_connections: 5\n  host: x\n  max_connections: 8\n"
        );
    }

    #[test]
    fn insertion_that_would_break_a_trailing_block_scalar_is_refused_or_exact() {
        let text = "database:\n  init: |\n    select 1;\n    # kept\n";
        match set_max_connections(text, 8) {
            Ok((new, _)) => assert_eq!(read_back(&new), Some(8)),
            Err(e) => assert!(e.message.starts_with("could not change database.max_connections")),
        }
    }

    /// A random block-style config: sections of scalar keys with comments and blank lines,
    /// `database` present or not, with or without `max_connections`, LF or CRLF.
    fn config_strategy() -> impl Strategy<Value = String> {
        let entry = (
            prop::sample::select(vec!["host", "port", "max_connections", "timeout", "user", "pool"]),
            prop::sample::select(vec!["1", "x", "\"quoted\"", "'single'", "30s", "true", ""]),
            prop::option::of(prop::sample::select(vec!["# note", "#", "# max_connections: 3"])),
            any::<bool>(),
        );
        let section = (
            prop::sample::select(vec!["database", "server", "cache", "models"]),
            prop::collection::vec(entry, 0..5),
        );
        (
            prop::collection::vec(section, 0..4),
            prop::sample::select(vec![2usize, 4]),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(sections, unit, crlf, header)| {
                let eol = if crlf { "\r\n" } else { "\n" };
                let mut text = if header {
                    format!("# config{eol}")
                } else {
                    String::new()
                };
                let mut seen = std::collections::BTreeSet::new();
                for (name, entries) in sections {
                    if !seen.insert(name) {
                        continue;
                    }
                    text.push_str(&format!("{name}:{eol}"));
                    let mut keys = std::collections::BTreeSet::new();
                    for (key, value, comment, blank) in entries {
                        if !keys.insert(key) {
                            continue;
                        }
                        let comment = comment.map(|c| format!("  {c}")).unwrap_or_default();
                        let sep = if value.is_empty() { "" } else { " " };
                        text.push_str(&format!("{}{key}:{sep}{value}{comment}{eol}", " ".repeat(unit)));
                        if blank {
                            text.push_str(eol);
                        }
                    }
                }
                text
            })
    }

    proptest! {
        #[test]
        fn random_configs_change_one_value_only(text in config_strategy(), n in 1u32..100_000) {
            let (new, _) = set_max_connections(&text, n).unwrap();
            // A number, or a string when the old value was quoted.
            let value = parse_yaml(&new).unwrap()["database"]["max_connections"].clone();
            prop_assert!(value.as_u64() == Some(u64::from(n)) || value.as_str() == Some(n.to_string().as_str()), "{:?}", value);
            let (removed, added) = changed_lines(&text, &new);
            prop_assert!(removed.len() <= 1, "{:?}", removed);
            if removed.len() == 1 {
                prop_assert_eq!(added.len(), 1);
            } else {
                // A new key, or a new `database:` section (2 lines).
                prop_assert!((1..=2).contains(&added.len()), "{:?}", added);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,120}", n in 1u32..1000) {
            let _ = set_max_connections(&text, n);
        }
    }

    fn read_back(text: &str) -> Option<u64> {
        parse_yaml(text)
            .ok()?
            .get("database")?
            .get("max_connections")?
            .as_u64()
    }

    #[test]
    fn errors_do_not_echo_the_text() {
        let err = set_max_connections("password: s3cret\n  bad: [\n", 10).unwrap_err();
        assert!(!err.message.contains("s3cret"), "{}", err.message);
        let err = set_max_connections("database: {password: s3cret}\n", 10).unwrap_err();
        assert!(!err.message.contains("s3cret"), "{}", err.message);
    }
}
