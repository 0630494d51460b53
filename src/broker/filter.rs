//! [`Filter`]: which subscribers a publication reaches, by metadata.

/// Subscriber metadata: name/value pairs set by the server (the action, or
/// a hook that sees the request), which publication filters match.
pub type Metadata = Vec<(String, String)>;

/// Delivers an event only to subscribers whose metadata has every pair.
///
/// # Example
///
/// ```
/// use rill::broker::Filter;
///
/// let news = Filter::new().eq("channel", "news");
/// assert!(news.matches(&[("channel".into(), "news".into()), ("user".into(), "7".into())]));
/// assert!(!news.matches(&[("channel".into(), "sports".into())]));
/// assert!(Filter::new().matches(&[])); // the empty filter matches everyone
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pairs: Vec<(String, String)>,
}

impl Filter {
    /// The empty filter: everyone matches.
    pub fn new() -> Self {
        Filter::default()
    }

    /// Also requires metadata `name` to be `value`.
    pub fn eq(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.push((name.into(), value.into()));
        self
    }

    /// Whether `metadata` has every pair of this filter.
    pub fn matches(&self, metadata: &[(String, String)]) -> bool {
        self.pairs
            .iter()
            .all(|(name, value)| metadata.iter().any(|(n, v)| n == name && v == value))
    }

    /// Whether the filter has no pair.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Filter {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Filter {
            pairs: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}
