//! [`Filter`]: which subscribers a publication reaches, by metadata.

/// Subscriber metadata: name/value pairs set by the server (the action, or
/// a hook that sees the request), which publication filters match.
///
/// # Example
///
/// ```
/// use rill::broker::{Filter, Metadata};
///
/// let subscriber: Metadata = vec![("user_id".into(), "7".into()), ("plan".into(), "pro".into())];
/// assert!(Filter::new().eq("plan", "pro").matches(&subscriber));
/// ```
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
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Filter;
    ///
    /// let everyone = Filter::new();
    /// assert!(everyone.is_empty());
    /// assert!(everyone.matches(&[("user_id".into(), "7".into())]));
    /// ```
    pub fn new() -> Self {
        Filter::default()
    }

    /// Also requires metadata `name` to be `value`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Filter;
    ///
    /// // Pro users of team 3 only: every pair must match.
    /// let filter = Filter::new().eq("team", "3").eq("plan", "pro");
    /// assert!(filter.matches(&[("plan".into(), "pro".into()), ("team".into(), "3".into())]));
    /// assert!(!filter.matches(&[("team".into(), "3".into())]));
    /// ```
    pub fn eq(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.push((name.into(), value.into()));
        self
    }

    /// Whether `metadata` has every pair of this filter.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Filter;
    ///
    /// let to_user_7 = Filter::new().eq("user_id", "7");
    /// assert!(to_user_7.matches(&[("user_id".into(), "7".into())]));
    /// assert!(!to_user_7.matches(&[("user_id".into(), "8".into())]));
    /// assert!(!to_user_7.matches(&[])); // no metadata, no match
    /// ```
    pub fn matches(&self, metadata: &[(String, String)]) -> bool {
        self.pairs
            .iter()
            .all(|(name, value)| metadata.iter().any(|(n, v)| n == name && v == value))
    }

    /// Whether the filter has no pair.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Filter;
    ///
    /// assert!(Filter::new().is_empty());
    /// assert!(!Filter::new().eq("lang", "fr").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs, in order.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Filter;
    ///
    /// // E.g. to forward the filter to another system.
    /// let filter: Filter = [("lang", "fr"), ("plan", "pro")].into_iter().collect();
    /// assert_eq!(filter.pairs(), [("lang".to_owned(), "fr".to_owned()), ("plan".to_owned(), "pro".to_owned())]);
    /// ```
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
