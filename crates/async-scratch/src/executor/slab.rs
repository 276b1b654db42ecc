//! The executor's list of its tasks: a slab, so that ids stay small and a stale id
//! matches nothing.
//!
//! Polling never looks here (the ready queue holds the tasks themselves); the list is
//! what diagnostics walk, and what the executor ends when it is dropped.

use super::task::Runnable;
use crate::diagnostics::TaskId;
use std::mem;

/// Task storage: a `Vec` of slots with a free list, so ids stay small and slots are
/// reused; each reuse bumps the slot's generation.
#[derive(Default)]
pub(super) struct Slab {
    pub(super) entries: Vec<SlabEntry>,
    pub(super) free: Vec<u32>,
    pub(super) occupied: usize,
}

pub(super) struct SlabEntry {
    pub(super) generation: u32,
    pub(super) slot: Option<Runnable>,
}

impl Slab {
    /// The id the next `insert` will use.
    pub(super) fn next_id(&self) -> TaskId {
        let index = match self.free.last() {
            Some(&index) => index,
            None => u32::try_from(self.entries.len()).expect("more than 4 billion tasks"),
        };
        let generation = self.entries.get(index as usize).map_or(0, |e| e.generation);
        TaskId::new(index, generation)
    }

    pub(super) fn insert(&mut self, slot: Runnable) -> TaskId {
        let id = self.next_id();
        match self.free.pop() {
            Some(index) => self.entries[index as usize].slot = Some(slot),
            None => self.entries.push(SlabEntry {
                generation: 0,
                slot: Some(slot),
            }),
        }
        self.occupied += 1;
        id
    }

    pub(super) fn get(&self, id: TaskId) -> Option<&Runnable> {
        let entry = self.entries.get(id.index as usize)?;
        if entry.generation != id.generation {
            return None;
        }
        entry.slot.as_ref()
    }

    pub(super) fn remove(&mut self, id: TaskId) -> Option<Runnable> {
        let entry = self.entries.get_mut(id.index as usize)?;
        if entry.generation != id.generation {
            return None;
        }
        let slot = entry.slot.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(id.index);
        self.occupied -= 1;
        Some(slot)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (TaskId, &Runnable)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| {
                let id = TaskId::new(index as u32, entry.generation);
                entry.slot.as_ref().map(|slot| (id, slot))
            })
    }

    pub(super) fn take_all(&mut self) -> Vec<Runnable> {
        self.free.clear();
        self.occupied = 0;
        mem::take(&mut self.entries)
            .into_iter()
            .filter_map(|entry| entry.slot)
            .collect()
    }
}
