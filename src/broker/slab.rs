//! [`Slab`]: a channel's subscribers, with O(1) insert and remove by key.
//!
//! A mass disconnect of n subscribers costs n removals of O(1) each (a
//! `Vec::retain` per leave made it O(n²)).

/// Values in reusable slots; a key stays valid until its value is removed.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// The head of the list of free slots.
    free: Option<usize>,
    len: usize,
}

#[derive(Debug)]
enum Slot<T> {
    Full(T),
    /// Free, pointing at the next free slot.
    Free(Option<usize>),
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: None,
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value`; returns its key.
    pub(crate) fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        match self.free {
            Some(key) => {
                let next = match self.slots[key] {
                    Slot::Free(next) => next,
                    Slot::Full(_) => unreachable!("the free list holds only free slots"),
                };
                self.free = next;
                self.slots[key] = Slot::Full(value);
                key
            }
            None => {
                self.slots.push(Slot::Full(value));
                self.slots.len() - 1
            }
        }
    }

    /// The value at `key`, if it holds one.
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.slots.get_mut(key) {
            Some(Slot::Full(value)) => Some(value),
            _ => None,
        }
    }

    /// Removes and returns the value at `key` if `keep` says it is the one
    /// (a key may have been reused since the caller got it).
    pub(crate) fn remove_if(&mut self, key: usize, is_it: impl FnOnce(&T) -> bool) -> Option<T> {
        match self.slots.get(key) {
            Some(Slot::Full(value)) if is_it(value) => {}
            _ => return None,
        }
        let slot = std::mem::replace(&mut self.slots[key], Slot::Free(self.free));
        self.free = Some(key);
        self.len -= 1;
        match slot {
            Slot::Full(value) => Some(value),
            Slot::Free(_) => unreachable!("checked full above"),
        }
    }

    /// Every value with its key.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(key, slot)| match slot {
                Slot::Full(value) => Some((key, value)),
                Slot::Free(_) => None,
            })
    }

    /// Every value from key `from` on, with its key.
    pub(crate) fn iter_mut_from(&mut self, from: usize) -> impl Iterator<Item = (usize, &mut T)> {
        self.slots
            .iter_mut()
            .enumerate()
            .skip(from)
            .filter_map(|(key, slot)| match slot {
                Slot::Full(value) => Some((key, value)),
                Slot::Free(_) => None,
            })
    }

    /// Every value.
    #[cfg(test)]
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|slot| match slot {
            Slot::Full(value) => Some(value),
            Slot::Free(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn keys_are_reused_and_checked() {
        let mut slab = Slab::default();
        let a = slab.insert("a");
        let b = slab.insert("b");
        assert_eq!(slab.remove_if(a, |v| *v == "a"), Some("a"));
        assert_eq!(slab.remove_if(a, |_| true), None, "already free");
        let c = slab.insert("c");
        assert_eq!(c, a, "the free slot is reused");
        assert_eq!(
            slab.remove_if(c, |v| *v == "a"),
            None,
            "not the value asked for"
        );
        assert_eq!(slab.len(), 2);
        let mut values: Vec<_> = slab.values().copied().collect();
        values.sort();
        assert_eq!(values, ["b", "c"]);
        assert_eq!(slab.get_mut(b).map(|v| *v), Some("b"));
    }
}
