//! Form bodies for the auth endpoints: `multipart/form-data` (documented) and
//! `application/x-www-form-urlencoded`. Small and strict; bodies are already size-limited.

use std::collections::HashMap;

/// The media type without parameters, lower-cased.
pub fn essence(content_type: Option<&str>) -> String {
    content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn param(content_type: &str, name: &str) -> Option<String> {
    for p in content_type.split(';').skip(1) {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case(name) {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// Parse a form body. Err carries a short reason.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<HashMap<String, String>, String> {
    match essence(content_type).as_str() {
        "application/x-www-form-urlencoded" => {
            Ok(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        }
        "multipart/form-data" => {
            let ct = content_type.unwrap_or("");
            let boundary = param(ct, "boundary").filter(|b| !b.is_empty()).ok_or("multipart body without boundary")?;
            parse_multipart(body, &boundary)
        }
        "" => Err("missing Content-Type".into()),
        other => Err(format!("unsupported Content-Type {other}")),
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn parse_multipart(body: &[u8], boundary: &str) -> Result<HashMap<String, String>, String> {
    let delim = format!("--{boundary}").into_bytes();
    let mut out = HashMap::new();
    let mut pos = find(body, &delim, 0).ok_or("multipart boundary not found")? + delim.len();
    loop {
        // After a delimiter: "--" ends the body, otherwise CRLF then a part.
        if body[pos..].starts_with(b"--") {
            return Ok(out);
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err("malformed multipart delimiter".into());
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or("malformed multipart part headers")?;
        let head = std::str::from_utf8(&body[pos..head_end]).map_err(|_| "non-UTF-8 part headers")?;
        let mut name = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                for p in v.split(';').map(str::trim) {
                    if let Some(n) = p.strip_prefix("name=") {
                        name = Some(n.trim_matches('"').to_string());
                    }
                }
            }
        }
        let data_start = head_end + 4;
        let mut end_delim = b"\r\n".to_vec();
        end_delim.extend_from_slice(&delim);
        let data_end = find(body, &end_delim, data_start).ok_or("unterminated multipart part")?;
        let name = name.ok_or("multipart part without a name")?;
        let value = String::from_utf8(body[data_start..data_end].to_vec()).map_err(|_| "non-UTF-8 form value")?;
        out.insert(name, value);
        pos = data_end + end_delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_roundtrip() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"scope\"\r\n\r\nasset_create offline\r\n--XyZ--\r\n";
        let m = parse(Some("multipart/form-data; boundary=XyZ"), body).unwrap();
        assert_eq!(m["client_id"], "abc");
        assert_eq!(m["scope"], "asset_create offline");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for b in [&b""[..], b"--", b"--XyZ", b"--XyZ\r\n", b"--XyZ\r\nfoo\r\n\r\nbar", b"\xff\xfe"] {
            let _ = parse(Some("multipart/form-data; boundary=XyZ"), b);
        }
        assert!(parse(Some("text/plain"), b"a=b").is_err());
    }
}
