//! A `.env` reader for the settings users carry over from the Python tool: `NAME=value` lines,
//! `#` comments, an optional `export ` prefix, and single or double quotes around values.

/// The assignments in a `.env` file, in order. Malformed lines are skipped.
pub fn parse(text: &str) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let value = value.trim();
        let value = match (value.chars().next(), value.chars().last()) {
            (Some(q @ ('"' | '\'')), Some(end)) if value.len() >= 2 && end == q => {
                &value[1..value.len() - 1]
            }
            // An unquoted value ends at an inline comment.
            _ => value.split(" #").next().unwrap_or(value).trim(),
        };
        vars.push((name.to_owned(), value.to_owned()));
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_names_values_quotes_and_comments() {
        let text = "# comment\nPORT=9000\nexport HOST = 127.0.0.1\nANYROUTER_BASE_URL=\"http://x/api\"\nA='b c'\nB=1 # note\nnot a line\n=x\n";
        assert_eq!(
            parse(text),
            vec![
                ("PORT".into(), "9000".into()),
                ("HOST".into(), "127.0.0.1".into()),
                ("ANYROUTER_BASE_URL".into(), "http://x/api".into()),
                ("A".into(), "b c".into()),
                ("B".into(), "1".into()),
            ]
        );
    }
}
