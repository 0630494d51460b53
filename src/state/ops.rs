//! [`UpdateOp`]: the atomic update operations on an item's JSON value, and
//! [`apply`], which runs a list of them all-or-nothing.
//!
//! A path is a list of segments: object keys, or decimal indexes into
//! arrays (`["tags", "0"]`); the empty path is the value itself. A segment
//! is taken literally — a dot is not a separator.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::limits::{LimitError, Limits};

/// One operation of an update.
///
/// ```
/// use rill::state::UpdateOp;
/// use serde_json::json;
///
/// let ops: Vec<UpdateOp> = serde_json::from_value(json!([
///     {"op": "test", "path": ["done"], "value": false},
///     {"op": "set", "path": ["done"], "value": true},
///     {"op": "increment", "path": ["edits"], "by": 1},
///     {"op": "append", "path": ["log"], "value": "done"},
/// ])).unwrap();
/// assert_eq!(ops.len(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum UpdateOp {
    /// Sets the value at `path` (missing objects on the way are created).
    Set {
        /// Where.
        #[serde(default)]
        path: Vec<String>,
        /// The new value.
        value: Value,
    },
    /// Shallow-merges the object `value` into the object at `path` (created
    /// when missing): its keys replace those of the same name.
    Merge {
        /// Where.
        #[serde(default)]
        path: Vec<String>,
        /// An object.
        value: Value,
    },
    /// Adds `by` to the number at `path` (0 when missing): integers stay
    /// integers (overflow is an error), a float makes a float.
    Increment {
        /// Where.
        path: Vec<String>,
        /// How much.
        by: Number,
    },
    /// Subtracts `by` from the number at `path` (0 when missing).
    Decrement {
        /// Where.
        path: Vec<String>,
        /// How much.
        by: Number,
    },
    /// Pushes `value` onto the array at `path`, or appends the string
    /// `value` to the string there; when missing, creates a string (for a
    /// string `value`) or a one-element array.
    Append {
        /// Where.
        #[serde(default)]
        path: Vec<String>,
        /// What.
        value: Value,
    },
    /// Removes the key or array element at `path` (nothing to do when it
    /// is not there).
    Remove {
        /// Where.
        path: Vec<String>,
    },
    /// A precondition: the value at `path` must equal `value` (`null` for
    /// "absent"), or the whole update fails.
    Test {
        /// Where.
        #[serde(default)]
        path: Vec<String>,
        /// The value expected.
        value: Value,
    },
}

impl UpdateOp {
    /// The operation's name, as in its JSON (`"set"`, `"merge"`, …).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::UpdateOp;
    ///
    /// let op = UpdateOp::Remove { path: vec!["tags".into(), "0".into()] };
    /// assert_eq!(op.name(), "remove");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            UpdateOp::Set { .. } => "set",
            UpdateOp::Merge { .. } => "merge",
            UpdateOp::Increment { .. } => "increment",
            UpdateOp::Decrement { .. } => "decrement",
            UpdateOp::Append { .. } => "append",
            UpdateOp::Remove { .. } => "remove",
            UpdateOp::Test { .. } => "test",
        }
    }

    fn path(&self) -> &[String] {
        match self {
            UpdateOp::Set { path, .. }
            | UpdateOp::Merge { path, .. }
            | UpdateOp::Increment { path, .. }
            | UpdateOp::Decrement { path, .. }
            | UpdateOp::Append { path, .. }
            | UpdateOp::Remove { path }
            | UpdateOp::Test { path, .. } => path,
        }
    }
}

/// Why an operation failed.
///
/// # Example
///
/// ```
/// use rill::state::{apply, Limits, OpFailure, UpdateOp};
/// use serde_json::json;
///
/// let ops = [UpdateOp::Append { path: vec!["count".into()], value: json!(1) }];
/// let error = apply(Some(&json!({"count": 3})), &ops, &Limits::default()).unwrap_err();
/// assert!(matches!(error.failure, OpFailure::WrongType { found: "a number", .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpFailure {
    /// A segment on the path leads through something that is neither an
    /// object nor an array, or an array index that is not there.
    #[error("the path does not lead anywhere: {reason}")]
    BadPath {
        /// What is in the way.
        reason: String,
    },
    /// The value at the path has the wrong type for the operation.
    #[error("expected {expected} at the path, found {found}")]
    WrongType {
        /// What the operation needs.
        expected: &'static str,
        /// What is there.
        found: &'static str,
    },
    /// An increment or decrement left the range of its integer type, or
    /// made a float that is not finite.
    #[error("the number overflowed")]
    Overflow,
    /// A `test` found another value.
    #[error("test failed: the value differs")]
    TestFailed,
    /// The result breaks a limit (depth, keys, size, a refused key).
    #[error(transparent)]
    Limit(#[from] LimitError),
}

/// An update that failed: which operation (its index in the list), and why.
/// Nothing was changed.
///
/// # Example
///
/// ```
/// use rill::state::{apply, Limits, OpFailure, UpdateOp};
/// use serde_json::json;
///
/// let ops = [
///     UpdateOp::Set { path: vec!["done".into()], value: json!(true) },
///     UpdateOp::Test { path: vec!["owner".into()], value: json!("ann") },
/// ];
/// let error = apply(Some(&json!({"owner": "bob"})), &ops, &Limits::default()).unwrap_err();
/// assert_eq!(error.to_string(), "operation 1 (test) failed: test failed: the value differs");
/// assert_eq!((error.index, error.op, error.failure), (1, "test", OpFailure::TestFailed));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation {index} ({op}) failed: {failure}")]
pub struct OpError {
    /// The failing operation's index.
    pub index: usize,
    /// Its name (`"increment"`, …).
    pub op: &'static str,
    /// Why it failed.
    pub failure: OpFailure,
}

/// Applies `ops` in order to `current` (`None`: the item is absent; the
/// ops start from `null`): the new value, or the first failure — in which
/// case nothing changed. The result is checked against `limits`.
///
/// # Errors
///
/// [`OpError`] naming the failing operation.
///
/// # Example
///
/// ```
/// use rill::state::{apply, Limits, UpdateOp};
/// use serde_json::json;
///
/// let cart = json!({"items": ["apple"], "total": 3});
/// let ops = [
///     UpdateOp::Append { path: vec!["items".into()], value: json!("pear") },
///     UpdateOp::Increment { path: vec!["total".into()], by: 2.into() },
/// ];
/// let cart = apply(Some(&cart), &ops, &Limits::default())?;
/// assert_eq!(cart, json!({"items": ["apple", "pear"], "total": 5}));
/// # Ok::<(), rill::state::OpError>(())
/// ```
pub fn apply(current: Option<&Value>, ops: &[UpdateOp], limits: &Limits) -> Result<Value, OpError> {
    let mut value = current.cloned().unwrap_or(Value::Null);
    for (index, op) in ops.iter().enumerate() {
        let fail = |failure: OpFailure| OpError {
            index,
            op: op.name(),
            failure,
        };
        limits.check_path(op.path()).map_err(|e| fail(e.into()))?;
        apply_one(&mut value, op).map_err(fail)?;
    }
    limits.check_value(&value).map_err(|e| OpError {
        index: ops.len().saturating_sub(1),
        op: ops.last().map_or("set", UpdateOp::name),
        failure: e.into(),
    })?;
    Ok(value)
}

fn apply_one(root: &mut Value, op: &UpdateOp) -> Result<(), OpFailure> {
    match op {
        UpdateOp::Test { path, value } => {
            let found = get(root, path).unwrap_or(&Value::Null);
            if found == value {
                Ok(())
            } else {
                Err(OpFailure::TestFailed)
            }
        }
        UpdateOp::Set { path, value } => {
            *slot(root, path)? = value.clone();
            Ok(())
        }
        UpdateOp::Merge { path, value } => {
            let Value::Object(add) = value else {
                return Err(OpFailure::WrongType {
                    expected: "an object to merge",
                    found: kind(value),
                });
            };
            let target = slot(root, path)?;
            if target.is_null() {
                *target = Value::Object(Map::new());
            }
            let Value::Object(into) = target else {
                return Err(OpFailure::WrongType {
                    expected: "an object",
                    found: kind(target),
                });
            };
            for (k, v) in add {
                into.insert(k.clone(), v.clone());
            }
            Ok(())
        }
        UpdateOp::Increment { path, by } => add(slot(root, path)?, by, false),
        UpdateOp::Decrement { path, by } => add(slot(root, path)?, by, true),
        UpdateOp::Append { path, value } => {
            let target = slot(root, path)?;
            match (&mut *target, value) {
                (Value::Null, Value::String(s)) => *target = Value::String(s.clone()),
                (Value::Null, v) => *target = Value::Array(vec![v.clone()]),
                (Value::Array(items), v) => items.push(v.clone()),
                (Value::String(s), Value::String(more)) => s.push_str(more),
                (Value::String(_), v) => {
                    return Err(OpFailure::WrongType {
                        expected: "a string to append to a string",
                        found: kind(v),
                    })
                }
                (other, _) => {
                    return Err(OpFailure::WrongType {
                        expected: "an array or a string",
                        found: kind(other),
                    })
                }
            }
            Ok(())
        }
        UpdateOp::Remove { path } => {
            let Some((last, parent)) = path.split_last() else {
                *root = Value::Null;
                return Ok(());
            };
            match get_mut(root, parent) {
                Some(Value::Object(map)) => {
                    map.remove(last);
                }
                Some(Value::Array(items)) => {
                    if let Some(i) = index(last, items.len()) {
                        items.remove(i);
                    }
                }
                _ => {}
            }
            Ok(())
        }
    }
}

/// The value at `path`, if there is one.
pub(crate) fn get<'v>(mut value: &'v Value, path: &[String]) -> Option<&'v Value> {
    for segment in path {
        value = match value {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(index(segment, items.len())?)?,
            _ => return None,
        };
    }
    Some(value)
}

fn get_mut<'v>(mut value: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    for segment in path {
        value = match value {
            Value::Object(map) => map.get_mut(segment)?,
            Value::Array(items) => {
                let i = index(segment, items.len())?;
                items.get_mut(i)?
            }
            _ => return None,
        };
    }
    Some(value)
}

/// The place at `path`, creating missing object keys (and objects in place
/// of `null`) on the way; `null` when it did not exist.
fn slot<'v>(mut value: &'v mut Value, path: &[String]) -> Result<&'v mut Value, OpFailure> {
    for segment in path {
        if value.is_null() {
            *value = Value::Object(Map::new());
        }
        value = match value {
            Value::Object(map) => map.entry(segment.clone()).or_insert(Value::Null),
            Value::Array(items) => {
                let len = items.len();
                let i = index(segment, len).ok_or_else(|| OpFailure::BadPath {
                    reason: format!("{segment:?} is no index of an array of {len}"),
                })?;
                &mut items[i]
            }
            other => {
                return Err(OpFailure::BadPath {
                    reason: format!("{segment:?} inside {}", kind(other)),
                })
            }
        };
    }
    Ok(value)
}

/// A decimal index below `len` (no sign, no leading zero).
fn index(segment: &str, len: usize) -> Option<usize> {
    if segment.is_empty()
        || !segment.bytes().all(|b| b.is_ascii_digit())
        || (segment.len() > 1 && segment.starts_with('0'))
    {
        return None;
    }
    segment.parse().ok().filter(|i| *i < len)
}

/// `target += by` (or `-=`), checked.
fn add(target: &mut Value, by: &Number, negate: bool) -> Result<(), OpFailure> {
    let current = match target {
        Value::Null => Number::from(0),
        Value::Number(n) => n.clone(),
        other => {
            return Err(OpFailure::WrongType {
                expected: "a number",
                found: kind(other),
            })
        }
    };
    *target = Value::Number(sum(&current, by, negate)?);
    Ok(())
}

fn sum(a: &Number, b: &Number, negate: bool) -> Result<Number, OpFailure> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        let result = if negate {
            x.checked_sub(y)
        } else {
            x.checked_add(y)
        };
        if let Some(r) = result {
            return Ok(Number::from(r));
        }
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        let result = if negate {
            x.checked_sub(y)
        } else {
            x.checked_add(y)
        };
        return result.map(Number::from).ok_or(OpFailure::Overflow);
    }
    if let (Some(x), Some(y)) = (as_i128(a), as_i128(b)) {
        // Integers of mixed sign and range: exact in i128, then back.
        let r = if negate { x - y } else { x + y };
        return i64::try_from(r)
            .map(Number::from)
            .or_else(|_| u64::try_from(r).map(Number::from))
            .map_err(|_| OpFailure::Overflow);
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Err(OpFailure::Overflow);
    };
    let r = if negate { x - y } else { x + y };
    Number::from_f64(r).ok_or(OpFailure::Overflow)
}

fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// A JSON value's kind, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(v: Value) -> Vec<UpdateOp> {
        serde_json::from_value(v).unwrap()
    }

    fn run(start: Value, o: Value) -> Result<Value, OpError> {
        apply(Some(&start), &ops(o), &Limits::default())
    }

    #[test]
    fn every_op_does_what_it_says() {
        let out = run(
            json!({"n": 1, "tags": ["a"], "s": "x", "o": {"k": 1}}),
            json!([
                {"op": "increment", "path": ["n"], "by": 2},
                {"op": "decrement", "path": ["m"], "by": 1.5},
                {"op": "append", "path": ["tags"], "value": "b"},
                {"op": "append", "path": ["s"], "value": "y"},
                {"op": "merge", "path": ["o"], "value": {"j": 2}},
                {"op": "set", "path": ["new", "deep"], "value": true},
                {"op": "remove", "path": ["tags", "0"]},
                {"op": "test", "path": ["n"], "value": 3},
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"n": 3, "m": -1.5, "tags": ["b"], "s": "xy", "o": {"k": 1, "j": 2}, "new": {"deep": true}})
        );
    }

    #[test]
    fn a_failing_op_is_named_and_nothing_changes() {
        let start = json!({"n": u64::MAX, "s": "x"});
        let e = run(
            start.clone(),
            json!([
                {"op": "set", "path": ["a"], "value": 1},
                {"op": "increment", "path": ["n"], "by": 1},
            ]),
        )
        .unwrap_err();
        assert_eq!(
            (e.index, e.op, e.failure),
            (1, "increment", OpFailure::Overflow)
        );
        // Past i64 is still exact, in u64.
        assert_eq!(
            run(
                json!({"n": i64::MAX}),
                json!([{"op": "increment", "path": ["n"], "by": 1}])
            )
            .unwrap(),
            json!({"n": i64::MAX as u64 + 1})
        );
        let e = run(
            start.clone(),
            json!([{"op": "increment", "path": ["s"], "by": 1}]),
        )
        .unwrap_err();
        assert!(matches!(e.failure, OpFailure::WrongType { .. }));
        let e = run(
            start.clone(),
            json!([{"op": "test", "path": ["s"], "value": "y"}]),
        )
        .unwrap_err();
        assert_eq!(e.failure, OpFailure::TestFailed);
        let e = run(
            start,
            json!([{"op": "set", "path": ["s", "deeper"], "value": 1}]),
        )
        .unwrap_err();
        assert!(matches!(e.failure, OpFailure::BadPath { .. }));
    }

    #[test]
    fn integers_cross_from_signed_to_unsigned_exactly() {
        let big = u64::MAX - 1;
        assert_eq!(
            run(
                json!({"n": -1}),
                json!([{"op": "increment", "path": ["n"], "by": big}])
            )
            .unwrap(),
            json!({"n": big - 1})
        );
        assert_eq!(
            run(
                json!({"n": 0}),
                json!([{"op": "decrement", "path": ["n"], "by": big}])
            )
            .unwrap_err()
            .failure,
            OpFailure::Overflow
        );
    }

    #[test]
    fn indexes_are_canonical_and_in_bounds() {
        for bad in ["01", "-1", "+1", "3", ""] {
            let e = run(
                json!({"a": [1, 2]}),
                json!([{"op": "set", "path": ["a", bad], "value": 0}]),
            )
            .unwrap_err();
            assert!(matches!(e.failure, OpFailure::BadPath { .. }), "{bad}");
        }
    }
}
