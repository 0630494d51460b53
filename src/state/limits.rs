//! [`Limits`]: how large and deep a stored value, and how long a name or a
//! path, may be.

use serde_json::Value;

/// Keys refused anywhere in a value or a path: JavaScript clients merge
/// values into objects, and these would reach their prototypes.
///
/// # Example
///
/// ```
/// use rill::state::{LimitError, Limits, REFUSED_KEYS};
/// use serde_json::json;
///
/// assert!(REFUSED_KEYS.contains(&"__proto__"));
/// let value = json!({"profile": {"__proto__": {"admin": true}}});
/// assert!(matches!(Limits::default().check_value(&value), Err(LimitError::RefusedKey { .. })));
/// ```
pub const REFUSED_KEYS: [&str; 3] = ["__proto__", "constructor", "prototype"];

/// Limits of a [`Store`](super::Store)'s values and names.
///
/// # Example
///
/// ```
/// use rill::state::Limits;
///
/// let limits = Limits { max_keys: 100, ..Limits::default() };
/// assert_eq!((limits.max_keys, limits.max_depth), (100, 32));
/// let store = rill::state::Store::builder().limits(limits).build();
/// assert_eq!(store.limits().max_keys, 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Nesting of arrays and objects (default 32).
    pub max_depth: usize,
    /// Keys of one object, elements of one array (default 1024).
    pub max_keys: usize,
    /// Bytes of an item's value as JSON (default 1 MiB).
    pub max_value_bytes: usize,
    /// Bytes of a stream, group or item name, or of a path segment
    /// (default 256).
    pub max_name_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_keys: 1024,
            max_value_bytes: 1024 * 1024,
            max_name_bytes: 256,
        }
    }
}

/// Which limit a value, name or path broke.
///
/// # Example
///
/// ```
/// use rill::state::{LimitError, Limits};
/// use serde_json::json;
///
/// let limits = Limits { max_depth: 2, ..Limits::default() };
/// let error = limits.check_value(&json!({"a": {"b": {"c": 1}}})).unwrap_err();
/// assert_eq!(error, LimitError::TooDeep { max: 2 });
/// assert_eq!(error.to_string(), "nested deeper than 2");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// Nested deeper than `max_depth`.
    #[error("nested deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// An object or array with more than `max_keys` entries.
    #[error("more than {max} keys or elements in one object or array")]
    TooManyKeys {
        /// The limit.
        max: usize,
    },
    /// Larger than `max_value_bytes` as JSON.
    #[error("larger than {max} bytes as JSON")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// A name or segment empty, too long, or with control characters or
    /// `/`.
    #[error("bad name {name:?}: {reason}")]
    BadName {
        /// The name (cut to 64 bytes).
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A key refused for JavaScript clients (`__proto__`, …).
    #[error("the key {key:?} is refused")]
    RefusedKey {
        /// The key.
        key: String,
    },
}

impl Limits {
    /// Checks a stream, group or item name: 1 to `max_name_bytes` bytes,
    /// no `/`, no control characters.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::Limits;
    ///
    /// let limits = Limits::default();
    /// assert!(limits.check_name("todo-42").is_ok());
    /// assert!(limits.check_name("").is_err());
    /// assert!(limits.check_name("ann/todos").is_err());
    /// ```
    pub fn check_name(&self, name: &str) -> Result<(), LimitError> {
        let bad = |reason| LimitError::BadName {
            name: cut(name),
            reason,
        };
        if name.is_empty() {
            return Err(bad("empty"));
        }
        if name.len() > self.max_name_bytes {
            return Err(bad("too long"));
        }
        if name.contains('/') || name.chars().any(char::is_control) {
            return Err(bad("contains '/' or a control character"));
        }
        Ok(())
    }

    /// Checks a path: at most `max_depth` segments, each at most
    /// `max_name_bytes`, none refused.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::{LimitError, Limits};
    ///
    /// let limits = Limits::default();
    /// assert!(limits.check_path(&["tags".into(), "0".into()]).is_ok());
    /// let error = limits.check_path(&["constructor".into()]).unwrap_err();
    /// assert!(matches!(error, LimitError::RefusedKey { .. }));
    /// ```
    pub fn check_path(&self, path: &[String]) -> Result<(), LimitError> {
        if path.len() > self.max_depth {
            return Err(LimitError::TooDeep {
                max: self.max_depth,
            });
        }
        for segment in path {
            if segment.len() > self.max_name_bytes {
                return Err(LimitError::BadName {
                    name: cut(segment),
                    reason: "too long",
                });
            }
            refused(segment)?;
        }
        Ok(())
    }

    /// Checks a value: depth, keys per object or array, refused keys, size
    /// as JSON.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::{LimitError, Limits};
    /// use serde_json::json;
    ///
    /// let limits = Limits { max_keys: 3, ..Limits::default() };
    /// assert!(limits.check_value(&json!([1, 2, 3])).is_ok());
    /// assert_eq!(limits.check_value(&json!([1, 2, 3, 4])), Err(LimitError::TooManyKeys { max: 3 }));
    /// ```
    pub fn check_value(&self, value: &Value) -> Result<(), LimitError> {
        let mut bytes = 0;
        self.walk(value, 0, &mut bytes)?;
        Ok(())
    }

    /// Walks `value` at `depth`, adding an estimate of its JSON size to
    /// `bytes` (exact for everything but escapes, which only add).
    fn walk(&self, value: &Value, depth: usize, bytes: &mut usize) -> Result<(), LimitError> {
        if depth > self.max_depth {
            return Err(LimitError::TooDeep {
                max: self.max_depth,
            });
        }
        match value {
            Value::Null | Value::Bool(_) => *bytes += 5,
            Value::Number(n) => *bytes += n.to_string().len(),
            Value::String(s) => *bytes += s.len() + 2,
            Value::Array(items) => {
                if items.len() > self.max_keys {
                    return Err(LimitError::TooManyKeys { max: self.max_keys });
                }
                *bytes += 2 + items.len();
                for item in items {
                    self.walk(item, depth + 1, bytes)?;
                }
            }
            Value::Object(map) => {
                if map.len() > self.max_keys {
                    return Err(LimitError::TooManyKeys { max: self.max_keys });
                }
                *bytes += 2;
                for (key, item) in map {
                    refused(key)?;
                    *bytes += key.len() + 4;
                    self.walk(item, depth + 1, bytes)?;
                }
            }
        }
        if *bytes > self.max_value_bytes {
            return Err(LimitError::TooLarge {
                max: self.max_value_bytes,
            });
        }
        Ok(())
    }
}

fn refused(key: &str) -> Result<(), LimitError> {
    if REFUSED_KEYS.contains(&key) {
        return Err(LimitError::RefusedKey {
            key: key.to_owned(),
        });
    }
    Ok(())
}

fn cut(name: &str) -> String {
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_past_a_limit_are_refused() {
        let limits = Limits {
            max_depth: 2,
            max_keys: 2,
            max_value_bytes: 40,
            max_name_bytes: 8,
        };
        assert!(limits.check_value(&json!({"a": {"b": 1}})).is_ok());
        assert_eq!(
            limits.check_value(&json!({"a": {"b": {"c": 1}}})),
            Err(LimitError::TooDeep { max: 2 })
        );
        assert_eq!(
            limits.check_value(&json!([1, 2, 3])),
            Err(LimitError::TooManyKeys { max: 2 })
        );
        assert_eq!(
            limits.check_value(&json!("x".repeat(50))),
            Err(LimitError::TooLarge { max: 40 })
        );
        assert!(matches!(
            limits.check_value(&json!({"__proto__": {}})),
            Err(LimitError::RefusedKey { .. })
        ));
        for bad in ["", "a/b", "toolongname", "a\nb"] {
            assert!(limits.check_name(bad).is_err(), "{bad:?}");
        }
        assert!(limits.check_name("todo_1").is_ok());
    }
}
