//! The one place that hides secrets before text reaches a terminal, a log or a JSON document:
//! URLs (userinfo, query values, fragment), HTTP headers (Authorization, cookies, tokens) and
//! free text such as an exec plugin's stderr (bearer tokens, `key=value` credentials, JWTs,
//! PEM private keys, long opaque strings).

/// What a hidden value is replaced with.
pub const MASK: &str = "***";

/// Key names whose value is a credential (compared in lower case, `-`/`_` ignored).
const SECRET_KEYS: &[&str] = &[
    "token",
    "accesstoken",
    "idtoken",
    "refreshtoken",
    "bearertoken",
    "password",
    "passwd",
    "pwd",
    "secret",
    "clientsecret",
    "apikey",
    "authorization",
    "cookie",
    "setcookie",
    "key",
    "clientkeydata",
    "privatekey",
    "sessiontoken",
    "secretaccesskey",
    "credential",
    "credentials",
    "auth",
    "sig",
    "signature",
];

fn is_secret_key(key: &str) -> bool {
    let norm: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    !norm.is_empty() && SECRET_KEYS.iter().any(|k| norm == *k || norm.ends_with(k))
}

/// A URL with its userinfo, every query value and the fragment replaced by [`MASK`].
///
/// Works on text that is not a valid URL too (a password holding `/`, `?` or `#`): everything
/// between `://` and the last `@` of the authority part counts as userinfo.
pub fn url(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(i) => (&raw[..i + 3], &raw[i + 3..]),
        None => ("", raw),
    };
    // Userinfo: up to the last '@' (a password may hold '/', '?', '#', even '@'). It is there
    // when an '@' comes before the path, or when the authority starts `user:` followed by
    // something that is not a port number.
    if !scheme.is_empty()
        && let Some(at) = rest.rfind('@')
    {
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let first_at = rest.find('@').unwrap_or(at);
        let user_colon = match rest.find([':', '/', '?', '#', '@']) {
            Some(colon) if rest[colon..].starts_with(':') => {
                let after = &rest[colon + 1..];
                let port_end = after.find(['/', '?', '#', '@']).unwrap_or(after.len());
                !after[..port_end].chars().all(|c| c.is_ascii_digit()) || after[port_end..].starts_with('@')
            }
            _ => false,
        };
        if first_at < authority_end || user_colon {
            return format!("{scheme}{MASK}@{}", url_tail(&rest[at + 1..]));
        }
    }
    format!("{scheme}{}", url_tail(rest))
}

/// Host, path, query (values masked) and fragment (masked) of a URL without userinfo.
fn url_tail(rest: &str) -> String {
    let (before_fragment, fragment) = match rest.find('#') {
        Some(i) => (&rest[..i], Some(())),
        None => (rest, None),
    };
    let mut out = match before_fragment.find('?') {
        Some(i) => {
            let query = before_fragment[i + 1..]
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) => format!("{k}={MASK}"),
                    None if pair.is_empty() => String::new(),
                    None => MASK.to_string(),
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{}?{query}", &before_fragment[..i])
        }
        None => before_fragment.to_string(),
    };
    if fragment.is_some() {
        out.push('#');
        out.push_str(MASK);
    }
    out
}

/// An HTTP header value as it may be shown: credentials keep only their scheme
/// (`Bearer ***`), cookies and token headers are masked whole.
pub fn header(name: &str, value: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower == "authorization" || lower == "proxy-authorization" {
        return match value.split_once(' ') {
            Some((scheme, _)) => format!("{scheme} {MASK}"),
            None => MASK.to_string(),
        };
    }
    if lower == "cookie" || lower == "set-cookie" || is_secret_key(&lower) {
        return MASK.to_string();
    }
    text(value)
}

/// Free text (an exec plugin's stderr, an error from a library) with anything that looks like
/// a credential replaced by [`MASK`].
pub fn text(input: &str) -> String {
    let without_keys = pem_blocks(input);
    let mut out = String::with_capacity(without_keys.len());
    for (i, line) in without_keys.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&line_text(line));
    }
    out
}

/// Replaces PEM private key blocks (multi-line) with a marker.
fn pem_blocks(input: &str) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(start) = rest.find("-----BEGIN") {
        let header_end = rest[start..]
            .find("-----\n")
            .or_else(|| rest[start + 10..].find("-----").map(|i| i + 10));
        let is_key = rest[start..]
            .lines()
            .next()
            .is_some_and(|l| l.contains("PRIVATE KEY"));
        out.push_str(&rest[..start]);
        match (is_key, header_end, rest[start..].find("-----END")) {
            (true, Some(_), Some(end_rel)) => {
                let end = start + end_rel;
                let close = rest[end + 8..]
                    .find("-----")
                    .map_or(rest.len(), |i| end + 8 + i + 5);
                out.push_str("[private key redacted]");
                rest = &rest[close..];
            }
            (true, _, _) => {
                out.push_str("[private key redacted]");
                rest = "";
            }
            _ => {
                out.push_str("-----BEGIN");
                rest = &rest[start + 10..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn line_text(line: &str) -> String {
    // Words are split on whitespace; separators are kept as they were.
    let mut out = String::with_capacity(line.len());
    let mut mask_next = false;
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String, mask_next: &mut bool| {
        if word.is_empty() {
            return;
        }
        if *mask_next {
            out.push_str(MASK);
            *mask_next = false;
        } else {
            let (redacted, mask_following) = word_text(word);
            out.push_str(&redacted);
            *mask_next = mask_following;
        }
        word.clear();
    };
    for c in line.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out, &mut mask_next);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out, &mut mask_next);
    out
}

/// One whitespace-free word; the flag says the next word is a value to hide
/// (`Bearer abc`, `token: abc`, `--token abc`).
fn word_text(word: &str) -> (String, bool) {
    let lower = word.to_ascii_lowercase();
    let bare = lower.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if matches!(bare, "bearer" | "basic") {
        return (word.to_string(), true);
    }
    if let Some(i) = word.find("://") {
        let start = word[..i]
            .rfind(|c: char| !c.is_ascii_alphanumeric())
            .map_or(0, |j| j + 1);
        return (format!("{}{}", &word[..start], url(&word[start..])), false);
    }
    // key=value, key:value, "key":"value" (one word), --key=value.
    for sep in ['=', ':'] {
        if let Some(i) = word.find(sep) {
            let key = &word[..i];
            let value = &word[i + 1..];
            if is_secret_key(key) {
                if value.trim_matches(|c: char| "\"',{}".contains(c)).is_empty() {
                    return (word.to_string(), true);
                }
                let trailing: String = value
                    .chars()
                    .rev()
                    .take_while(|c| "\"',;}".contains(*c))
                    .collect();
                let leading: String = value.chars().take_while(|c| "\"'".contains(*c)).collect();
                return (
                    format!(
                        "{key}{sep}{leading}{MASK}{}",
                        trailing.chars().rev().collect::<String>()
                    ),
                    false,
                );
            }
        }
    }
    // A flag or key alone (`--token`, `token:`, `"token":`) hides the next word.
    let key = lower
        .trim_start_matches('-')
        .trim_end_matches([':', '='])
        .trim_matches('"');
    if (lower.starts_with("--") || lower.ends_with(':') || lower.ends_with('=')) && is_secret_key(key) {
        return (word.to_string(), true);
    }
    if looks_opaque(word) {
        return (MASK.to_string(), false);
    }
    (word.to_string(), false)
}

/// A JWT, or a long run of token characters mixing letters and digits.
fn looks_opaque(word: &str) -> bool {
    let core = word.trim_matches(|c: char| "\"'(),;[]{}<>".contains(c));
    if core.starts_with("eyJ") && core.contains('.') {
        return true;
    }
    let token_chars = core
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_+=./~".contains(c));
    let letters = core.chars().any(|c| c.is_ascii_alphabetic());
    let digits = core.chars().any(|c| c.is_ascii_digit());
    token_chars && letters && digits && core.len() >= 24 && !core.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_userinfo_query_values_and_fragment() {
        assert_eq!(url("https://example.com/health"), "https://example.com/health");
        assert_eq!(
            url("https://u:p@example.com/health"),
            "https://***@example.com/health"
        );
        assert_eq!(
            url("https://u:pa/ss?w#rd@example.com/health"),
            "https://***@example.com/health"
        );
        assert_eq!(
            url("https://example.com/health?token=s3cret&x=1"),
            "https://example.com/health?token=***&x=***"
        );
        assert_eq!(url("https://example.com/h#frag"), "https://example.com/h#***");
        assert_eq!(
            url("https://example.com/h?email=a@b.c"),
            "https://example.com/h?email=***"
        );
    }

    #[test]
    fn headers_keep_only_the_scheme_of_credentials() {
        assert_eq!(header("Authorization", "Bearer abc"), "Bearer ***");
        assert_eq!(header("proxy-authorization", "Basic dXNlcg=="), "Basic ***");
        assert_eq!(header("Cookie", "session=abc"), "***");
        assert_eq!(header("X-Auth-Token", "abc"), "***");
        assert_eq!(header("Accept", "application/json"), "application/json");
        assert_eq!(header("Impersonate-User", "jane"), "jane");
    }

    #[test]
    fn free_text_hides_credentials() {
        for (input, secret) in [
            ("error: token=canary123 rejected", "canary123"),
            ("using Bearer canary-abc now", "canary-abc"),
            ("{\"token\":\"canary-json\"}", "canary-json"),
            ("token: canary-yaml", "canary-yaml"),
            ("password=hunter2", "hunter2"),
            ("--token canary-flag", "canary-flag"),
            ("jwt eyJhbGciOi.eyJzdWIiOiJ4.c2ln", "eyJhbGciOi"),
            (
                "opaque AKIA1234567890ABCDEFGHIJKL here",
                "AKIA1234567890ABCDEFGHIJKL",
            ),
            ("see https://u:canarypw@host/x?token=canaryq", "canarypw"),
            ("see https://u:canarypw@host/x?token=canaryq", "canaryq"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIcanarykey\n-----END RSA PRIVATE KEY-----\nafter",
                "MIIcanarykey",
            ),
        ] {
            let out = text(input);
            assert!(!out.contains(secret), "{input:?} -> {out:?}");
        }
    }

    #[test]
    fn ordinary_text_stays() {
        for input in [
            "exec plugin failed: could not find profile \"dev\" in /home/u/.aws/config",
            "connection refused (os error 111)",
            "line 3, column 7",
            "Run `aws sso login` first",
        ] {
            assert_eq!(text(input), input);
        }
    }
}
