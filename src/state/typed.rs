//! [`Typed`]: a store's stream seen through one Rust type.

use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;

use super::{
    error::StateError,
    store::{Revision, Store},
};

/// A stream of a [`Store`] whose items are all `T`: values go in and come
/// out as `T` (JSON underneath, watched like any other).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
/// use rill::state::Store;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Todo { title: String, completed: bool }
///
/// let todos = Store::new().typed::<Todo>("todos");
/// todos.set("ann", "t1", &Todo { title: "milk".into(), completed: false }).await?;
/// assert_eq!(todos.get("ann", "t1").await?.unwrap().title, "milk");
/// # Ok(()) }
/// ```
pub struct Typed<T> {
    store: Store,
    stream: String,
    _type: PhantomData<fn() -> T>,
}

impl Store {
    /// Stream `stream` of this store, typed.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::Store;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Score { points: u32 }
    ///
    /// let store = Store::new();
    /// let scores = store.typed::<Score>("scores");
    /// scores.set("game1", "ann", &Score { points: 7 }).await?;
    /// // The same item, as JSON through the untyped store:
    /// assert_eq!(store.get("scores", "game1", "ann").await?, Some(serde_json::json!({"points": 7})));
    /// # Ok(()) }
    /// ```
    pub fn typed<T: Serialize + DeserializeOwned>(&self, stream: &str) -> Typed<T> {
        Typed {
            store: self.clone(),
            stream: stream.to_owned(),
            _type: PhantomData,
        }
    }
}

fn to_value<T: Serialize>(value: &T) -> Result<serde_json::Value, StateError> {
    serde_json::to_value(value).map_err(|e| StateError::Type {
        reason: e.to_string(),
    })
}

fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, StateError> {
    serde_json::from_value(value).map_err(|e| StateError::Type {
        reason: e.to_string(),
    })
}

impl<T: Serialize + DeserializeOwned> Typed<T> {
    /// Sets item `group/item`; the group's revision after it.
    ///
    /// # Errors
    ///
    /// [`StateError::Type`] when `value` does not serialize; as for
    /// [`Store::set`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// # use rill::state::Store;
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Score { points: u32 }
    /// let scores = Store::new().typed::<Score>("scores");
    /// let rev = scores.set("game1", "ann", &Score { points: 7 }).await?;
    /// assert_eq!(rev.rev, 1);
    /// let rev = scores.set("game1", "bob", &Score { points: 3 }).await?;
    /// assert_eq!(rev.rev, 2); // one revision per group
    /// # Ok(()) }
    /// ```
    pub async fn set(&self, group: &str, item: &str, value: &T) -> Result<Revision, StateError> {
        let value = to_value(value)?;
        Ok(self.store.set(&self.stream, group, item, value).await?.rev)
    }

    /// Item `group/item`.
    ///
    /// # Errors
    ///
    /// [`StateError::Type`] when the stored value is not a `T`; as for
    /// [`Store::get`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::state::{StateError, Store};
    /// use serde_json::json;
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Score { points: u32 }
    ///
    /// let store = Store::new();
    /// store.set("scores", "game1", "ann", json!({"points": "lots"})).await.unwrap();
    /// let scores = store.typed::<Score>("scores");
    /// assert!(matches!(scores.get("game1", "ann").await, Err(StateError::Type { .. })));
    /// assert!(matches!(scores.get("game1", "bob").await, Ok(None)));
    /// # }
    /// ```
    pub async fn get(&self, group: &str, item: &str) -> Result<Option<T>, StateError> {
        match self.store.get(&self.stream, group, item).await? {
            Some(value) => Ok(Some(from_value(value)?)),
            None => Ok(None),
        }
    }

    /// Deletes item `group/item`; whether it was there.
    ///
    /// # Errors
    ///
    /// As for [`Store::delete`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// # use rill::state::Store;
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Score { points: u32 }
    /// let scores = Store::new().typed::<Score>("scores");
    /// scores.set("game1", "ann", &Score { points: 7 }).await?;
    /// assert!(scores.delete("game1", "ann").await?);
    /// assert!(!scores.delete("game1", "ann").await?); // already gone
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, group: &str, item: &str) -> Result<bool, StateError> {
        Ok(self.store.delete(&self.stream, group, item).await?.changed)
    }

    /// The items of `group`, in id order.
    ///
    /// # Errors
    ///
    /// [`StateError::Type`] when a stored value is not a `T`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// # use rill::state::Store;
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Score { points: u32 }
    /// let scores = Store::new().typed::<Score>("scores");
    /// scores.set("game1", "bob", &Score { points: 3 }).await?;
    /// scores.set("game1", "ann", &Score { points: 7 }).await?;
    /// let board: Vec<(String, u32)> = scores.list("game1").await?
    ///     .into_iter().map(|(name, score)| (name, score.points)).collect();
    /// assert_eq!(board, [("ann".to_owned(), 7), ("bob".to_owned(), 3)]);
    /// # Ok(()) }
    /// ```
    pub async fn list(&self, group: &str) -> Result<Vec<(String, T)>, StateError> {
        self.store
            .list(&self.stream, group)
            .await?
            .into_iter()
            .map(|(id, value)| Ok((id, from_value(value)?)))
            .collect()
    }
}

impl<T> std::fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Typed")
            .field("stream", &self.stream)
            .finish()
    }
}
