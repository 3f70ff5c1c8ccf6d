//! Bazel's HTTP cache protocol: action results and blobs in, `PUT <base>/ac/<hash>` (an
//! `ActionResult` in protobuf encoding) and `PUT <base>/cas/<hash>` out; `GET` of the same
//! paths back, 404 meaning "not cached". SHA-256 only, as Bazel uses it, so both tools can
//! share a server (bazel-remote, nginx with WebDAV, an object store behind HTTP).

use std::collections::HashMap;

use prost::Message;
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};

use super::{Backend, HashFn, RemoteError, RemoteSpec, Result, proto};

pub struct HttpBackend {
    client: Client,
    /// The URL without credentials and without a trailing slash.
    base: String,
    auth: Option<(String, String)>,
}

/// `%xx` escapes of a URL's user or password decoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn failed(what: &str, e: reqwest::Error) -> RemoteError {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    RemoteError(format!("{what}: {text}"))
}

impl HttpBackend {
    pub fn new(spec: &RemoteSpec) -> Result<HttpBackend> {
        let mut url =
            reqwest::Url::parse(&spec.url).map_err(|e| RemoteError(format!("bad URL: {e}")))?;
        let auth = (!url.username().is_empty()).then(|| {
            (
                percent_decode(url.username()),
                percent_decode(url.password().unwrap_or("")),
            )
        });
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &spec.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| RemoteError(format!("bad header name '{name}': {e}")))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|e| RemoteError(format!("bad header value: {e}")))?;
            headers.append(name, value);
        }
        let client = Client::builder()
            .timeout(spec.timeout)
            .connect_timeout(spec.timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| failed("cannot create an HTTP client", e))?;
        Ok(HttpBackend {
            client,
            base: url.as_str().trim_end_matches('/').to_owned(),
            auth,
        })
    }

    fn with_auth(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.auth {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// `GET <base>/<kind>/<hash>`: the body, or `None` for 404.
    fn get(&self, kind: &str, hash: &str) -> Result<Option<Vec<u8>>> {
        let url = format!("{}/{kind}/{hash}", self.base);
        let response = self
            .with_auth(self.client.get(&url))
            .send()
            .map_err(|e| failed(&format!("GET /{kind}/{hash}"), e))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check(response, "GET", kind, hash)?;
        let body = response
            .bytes()
            .map_err(|e| failed(&format!("GET /{kind}/{hash}"), e))?;
        Ok(Some(body.to_vec()))
    }

    fn put(&self, kind: &str, hash: &str, body: Vec<u8>) -> Result<()> {
        let url = format!("{}/{kind}/{hash}", self.base);
        let response = self
            .with_auth(self.client.put(&url))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .map_err(|e| failed(&format!("PUT /{kind}/{hash}"), e))?;
        check(response, "PUT", kind, hash).map(|_| ())
    }
}

fn check(response: Response, method: &str, kind: &str, hash: &str) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(RemoteError(format!(
        "{method} /{kind}/{hash} answered {status}"
    )))
}

impl Backend for HttpBackend {
    fn hash_fn(&self) -> HashFn {
        HashFn::Sha256
    }

    fn get_action_result(&self, key: &proto::Digest) -> Result<Option<proto::ActionResult>> {
        let Some(body) = self.get("ac", &key.hash)? else {
            return Ok(None);
        };
        // Not an ActionResult (a damaged entry): a miss, and the action's upload replaces it.
        Ok(proto::ActionResult::decode(body.as_slice()).ok())
    }

    fn update_action_result(
        &self,
        key: &proto::Digest,
        result: &proto::ActionResult,
    ) -> Result<()> {
        self.put("ac", &key.hash, result.encode_to_vec())
    }

    fn upload_blobs(&self, blobs: Vec<(proto::Digest, Vec<u8>)>) -> Result<()> {
        // Always PUT, as Bazel does: a damaged blob on the server is replaced by the next
        // upload of the same content.
        for (digest, data) in blobs {
            self.put("cas", &digest.hash, data)?;
        }
        Ok(())
    }

    fn read_blobs(&self, digests: &[proto::Digest]) -> Result<HashMap<String, Vec<u8>>> {
        let mut out = HashMap::new();
        for d in digests {
            if let Some(data) = self.get("cas", &d.hash)? {
                out.insert(d.hash.clone(), data);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_user_info() {
        assert_eq!(percent_decode("a%40b%3Ac"), "a@b:c");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%z"), "bad%z");
    }
}
