//! What a cable connection is known by: the request it was opened with
//! ([`ConnectRequest`], what the `connect` hook reads) and the values it is
//! identified by ([`Identifiers`], Rails' `identified_by`).

use http::{HeaderMap, Uri};

/// The request a cable connection was opened with, as the `connect` hook
/// sees it: its URL, query, headers and cookies.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    uri: Uri,
    headers: HeaderMap,
    query: Vec<(String, String)>,
}

impl ConnectRequest {
    pub(crate) fn new(uri: Uri, headers: HeaderMap, query: Vec<(String, String)>) -> Self {
        ConnectRequest {
            uri,
            headers,
            query,
        }
    }

    /// The request's URI (path and query).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every request header.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Header `name`, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Cookie `name` from the `Cookie` headers (the value as sent).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

/// The values a connection is identified by (Rails' `identified_by`), in
/// the order they were given: a channel reads them, and a
/// [remote disconnect](super::Cable::disconnect) picks connections by them.
///
/// ```
/// use rill::cable::Identifiers;
///
/// let ids = Identifiers::new().with("user", "alice").with("tenant", "7");
/// assert_eq!(ids.get("user"), Some("alice"));
/// assert!(ids.matches(&[("tenant", "7")]));
/// assert!(!ids.matches(&[("user", "bob")]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identifiers {
    pairs: Vec<(String, String)>,
}

impl Identifiers {
    /// No identifiers (an anonymous connection).
    pub fn new() -> Self {
        Identifiers::default()
    }

    /// Adds (or replaces) identifier `name`.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        match self.pairs.iter_mut().find(|(n, _)| *n == name) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((name, value)),
        }
        self
    }

    /// Identifier `name`'s value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether every pair of `wanted` is among these identifiers (an empty
    /// `wanted` matches every connection).
    pub fn matches(&self, wanted: &[(&str, &str)]) -> bool {
        wanted.iter().all(|(n, v)| self.get(n) == Some(*v))
    }

    /// The pairs, in the order they were given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(http::header::COOKIE, "a=1; session=xyz".parse().unwrap());
        headers.append(http::header::COOKIE, "b=2".parse().unwrap());
        let req = ConnectRequest::new(Uri::from_static("/cable"), headers, Vec::new());
        assert_eq!(req.cookie("session"), Some("xyz"));
        assert_eq!(req.cookie("b"), Some("2"));
        assert_eq!(req.cookie("c"), None);
    }
}
