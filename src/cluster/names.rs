//! Object and namespace names checked as the API server checks them
//! (k8s.io/apimachinery/pkg/util/validation: `IsDNS1123Subdomain`, `IsDNS1123Label`,
//! `IsConfigMapKey`), so a name never reaches a request URL it could change
//! (`orchestrator?dryRun=All`, `../secrets`).

/// `IsDNS1123Label`: at most 63 characters, lower-case alphanumerics or `-`, starting and
/// ending with an alphanumeric. Namespaces and container names.
///
/// # Errors
/// The API server's wording, naming the value.
pub fn dns1123_label(value: &str) -> Result<String, String> {
    if value.len() > 63 {
        return Err(format!("\"{value}\": must be no more than 63 characters"));
    }
    if !is_label(value) {
        return Err(format!(
            "\"{value}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters \
             or '-', and must start and end with an alphanumeric character (e.g. 'my-name')"
        ));
    }
    Ok(value.to_string())
}

/// `IsDNS1123Subdomain`: at most 253 characters, dot-separated labels. Object names.
///
/// # Errors
/// The API server's wording, naming the value.
pub fn dns1123_subdomain(value: &str) -> Result<String, String> {
    if value.len() > 253 {
        return Err(format!("\"{value}\": must be no more than 253 characters"));
    }
    if value.is_empty() || !value.split('.').all(is_label) {
        return Err(format!(
            "\"{value}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
             characters, '-' or '.', and must start and end with an alphanumeric character \
             (e.g. 'example.com')"
        ));
    }
    Ok(value.to_string())
}

/// `IsConfigMapKey`: alphanumerics, `-`, `_` or `.`, at most 253 characters, not `.` or `..`.
///
/// # Errors
/// The API server's wording, naming the value.
pub fn config_map_key(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value != "."
        && value != ".."
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(value.to_string())
    } else {
        Err(format!(
            "\"{value}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' \
             (e.g. 'key.name')"
        ))
    }
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_api_server_rules() {
        for ok in ["orchestrator", "a", "web-1", "a.b.c", "0abc"] {
            assert!(dns1123_subdomain(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Orchestrator",
            "orchestrator?dryRun=All",
            "../secrets",
            "a/b",
            "-a",
            "a-",
            "a..b",
            "a_b",
        ] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad}");
        }
        assert!(dns1123_subdomain(&"a".repeat(254)).is_err());
        assert!(dns1123_label("llm-orchestrator").is_ok());
        assert!(dns1123_label("a.b").is_err(), "labels have no dots");
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(config_map_key("config.yaml").is_ok());
        assert!(config_map_key("../x").is_err());
        assert!(config_map_key("..").is_err());
    }
}
