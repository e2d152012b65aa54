//! Bind groups kept between dispatches: a training step dispatches the same kernels over the
//! same tensors every iteration, and creating a bind group costs the driver more than recording
//! the dispatch itself.
//!
//! Only groups whose buffers all belong to live tensors are kept. A tensor's storage tells the
//! cache when it is dropped, and every group naming its buffer goes with it, so the cache never
//! keeps a freed tensor's memory alive. Temporaries inside an operation (split readout weights,
//! partial sums) get a group of their own each time.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Groups kept at most; past it the cache starts again (a long session's restarts make new
/// tensors, and their old groups went with them, so this is only a backstop).
const MOST_GROUPS: usize = 4096;

/// A kernel's bind group layout and the buffers of its bindings (the parameter ring, the other
/// binding, is the same for every group).
type Key = (wgpu::BindGroupLayout, Vec<wgpu::Buffer>);

#[derive(Default)]
struct Entries {
    /// The buffers of live tensors.
    tensors: HashSet<wgpu::Buffer>,
    groups: HashMap<Key, wgpu::BindGroup>,
}

/// The backend's kept bind groups, shared with its tensors' storage.
#[derive(Default)]
pub(crate) struct BindGroupCache {
    entries: Mutex<Entries>,
    created: std::sync::atomic::AtomicU64,
}

impl BindGroupCache {
    /// Registers a tensor's buffer: groups over it may be kept.
    pub(crate) fn track(&self, buffer: &wgpu::Buffer) {
        self.lock().tensors.insert(buffer.clone());
    }

    /// A tensor's buffer is being dropped: forget it and every group that binds it.
    pub(crate) fn forget(&self, buffer: &wgpu::Buffer) {
        let mut entries = self.lock();
        if entries.tensors.remove(buffer) {
            entries
                .groups
                .retain(|(_, buffers), _| !buffers.contains(buffer));
        }
    }

    /// The group of layout `layout` over `buffers`, made by `create` unless kept from before.
    pub(crate) fn get_or_create(
        &self,
        layout: &wgpu::BindGroupLayout,
        buffers: &[&wgpu::Buffer],
        create: impl FnOnce() -> wgpu::BindGroup,
    ) -> wgpu::BindGroup {
        let mut entries = self.lock();
        if !buffers
            .iter()
            .all(|buffer| entries.tensors.contains(*buffer))
        {
            drop(entries);
            self.count_creation();
            return create();
        }
        let key = (
            layout.clone(),
            buffers.iter().map(|&buffer| buffer.clone()).collect(),
        );
        if let Some(group) = entries.groups.get(&key) {
            return group.clone();
        }
        if entries.groups.len() >= MOST_GROUPS {
            entries.groups.clear();
        }
        self.count_creation();
        let group = create();
        entries.groups.insert(key, group.clone());
        group
    }

    /// Bind groups created so far (kept or not), for tests and the bench.
    pub(crate) fn created(&self) -> u64 {
        self.created.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Groups kept now.
    pub(crate) fn kept(&self) -> usize {
        self.lock().groups.len()
    }

    fn count_creation(&self) {
        self.created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
