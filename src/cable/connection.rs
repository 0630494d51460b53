//! What a cable connection is known by: the request it was opened with
//! ([`ConnectRequest`], what the `connect` hook reads) and the values it is
//! identified by ([`Identifiers`], Rails' `identified_by`).

use http::{HeaderMap, Uri};

/// The request a cable connection was opened with, as the `connect` hook
/// sees it: its URL, query, headers and cookies.
///
/// # Example
///
/// ```
/// use rill::cable::{Cable, Identifiers, Rejection};
///
/// let cable = Cable::builder()
///     .connect(|req| async move {
///         // `createConsumer("/cable?token=…")`, or a session cookie
///         let user = req.query("token").or(req.cookie("session_user"));
///         user.map(|u| Identifiers::new().with("current_user", u)).ok_or(Rejection::Unauthorized)
///     })
///     .build();
/// # drop(cable);
/// ```
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
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Cable, Identifiers, Rejection};
    ///
    /// // Two mount points, one cable: tell them apart by path.
    /// let cable = Cable::builder()
    ///     .connect(|req| async move {
    ///         let area = if req.uri().path() == "/admin/cable" { "admin" } else { "public" };
    ///         Ok::<_, Rejection>(Identifiers::new().with("area", area))
    ///     })
    ///     .build();
    /// # drop(cable);
    /// ```
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The first value of query parameter `name`, decoded.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Cable, Identifiers, Rejection};
    ///
    /// let cable = Cable::builder()
    ///     .connect(|req| async move {
    ///         match req.query("tenant") {
    ///             Some(tenant) => Ok(Identifiers::new().with("tenant", tenant)),
    ///             None => Err(Rejection::InvalidRequest),
    ///         }
    ///     })
    ///     .build();
    /// # drop(cable);
    /// ```
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every request header.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Cable, Identifiers, Rejection};
    /// use rill::http::header;
    ///
    /// let cable = Cable::builder()
    ///     .connect(|req| async move {
    ///         let agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    ///         Ok::<_, Rejection>(Identifiers::new().with("agent", agent.unwrap_or("unknown")))
    ///     })
    ///     .build();
    /// # drop(cable);
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Header `name`, when present and text.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Cable, Identifiers, Rejection};
    ///
    /// let cable = Cable::builder()
    ///     .connect(|req| async move {
    ///         match req.header("x-api-key") {
    ///             Some(key) if key == "k-123" => Ok(Identifiers::new().with("client", "mobile")),
    ///             _ => Err(Rejection::Unauthorized),
    ///         }
    ///     })
    ///     .build();
    /// # drop(cable);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Cookie `name` from the `Cookie` headers (the value as sent).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Cable, Identifiers, Rejection};
    ///
    /// // `cookies.encrypted[:user_id]` in Rails; here a cookie checked by your session store.
    /// let cable = Cable::builder()
    ///     .connect(|req| async move {
    ///         match req.cookie("user_id") {
    ///             Some(id) => Ok(Identifiers::new().with("current_user", id)),
    ///             None => Err(Rejection::Unauthorized),
    ///         }
    ///     })
    ///     .build();
    /// # drop(cable);
    /// ```
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
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Identifiers;
    ///
    /// let anonymous = Identifiers::new();
    /// assert_eq!(anonymous.iter().count(), 0);
    /// assert!(anonymous.matches(&[])); // an empty filter matches every connection
    /// ```
    pub fn new() -> Self {
        Identifiers::default()
    }

    /// Adds (or replaces) identifier `name`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Identifiers;
    ///
    /// let ids = Identifiers::new().with("current_user", "42").with("current_user", "43");
    /// assert_eq!(ids.get("current_user"), Some("43")); // replaced, not repeated
    /// assert_eq!(ids.iter().count(), 1);
    /// ```
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        match self.pairs.iter_mut().find(|(n, _)| *n == name) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((name, value)),
        }
        self
    }

    /// Identifier `name`'s value.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Identifiers;
    ///
    /// let ids = Identifiers::new().with("current_user", "42");
    /// assert_eq!(ids.get("current_user"), Some("42"));
    /// assert_eq!(ids.get("account"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether every pair of `wanted` is among these identifiers (an empty
    /// `wanted` matches every connection).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Identifiers;
    ///
    /// let ids = Identifiers::new().with("current_user", "42").with("account", "acme");
    /// assert!(ids.matches(&[("account", "acme")]));
    /// assert!(ids.matches(&[("account", "acme"), ("current_user", "42")]));
    /// assert!(!ids.matches(&[("account", "acme"), ("current_user", "7")]));
    /// ```
    pub fn matches(&self, wanted: &[(&str, &str)]) -> bool {
        wanted.iter().all(|(n, v)| self.get(n) == Some(*v))
    }

    /// The pairs, in the order they were given.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Identifiers;
    ///
    /// let ids = Identifiers::new().with("current_user", "42").with("account", "acme");
    /// let pairs: Vec<_> = ids.iter().collect();
    /// assert_eq!(pairs, [("current_user", "42"), ("account", "acme")]);
    /// ```
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
