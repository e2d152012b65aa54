//! Temporaries reused between operations: the partial sums of reductions and of the split
//! weight gradient are needed on every training iteration, and a buffer (with its bind group)
//! made afresh each time costs the driver more than the dispatch that fills it.
//!
//! A pooled buffer goes back to the pool when its guard drops, which may be before the GPU has
//! run the passes recorded over it. That is safe because the next user's passes come later in
//! the same queue, which orders them; only host writes could overtake, and pooled buffers are
//! never written from the host. Their contents are whatever the last user left: only kernels
//! that write every element they later read get one.

use std::collections::HashMap;
use std::sync::Mutex;

use super::bind_groups::BindGroupCache;

/// Bytes the pool keeps at most; a buffer returned beyond it is freed.
const MOST_POOLED_BYTES: u64 = 256 << 20;

#[derive(Default)]
struct Free {
    /// Free buffers by size class.
    by_class: HashMap<u64, Vec<wgpu::Buffer>>,
    /// Bytes of every buffer the pool owns, free or lent.
    owned_bytes: u64,
}

#[derive(Default)]
pub(crate) struct ScratchPool {
    free: Mutex<Free>,
}

/// A pooled buffer, returned to the pool when dropped.
pub(crate) struct Scratch<'a> {
    buffer: Option<wgpu::Buffer>,
    class: u64,
    pool: &'a ScratchPool,
    bind_groups: &'a BindGroupCache,
}

impl std::ops::Deref for Scratch<'_> {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("held until dropped")
    }
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            let mut free = self.pool.lock();
            if free.owned_bytes <= MOST_POOLED_BYTES {
                free.by_class.entry(self.class).or_default().push(buffer);
            } else {
                free.owned_bytes -= self.class;
                self.bind_groups.forget(&buffer);
            }
        }
    }
}

impl ScratchPool {
    /// A buffer of at least `bytes` (at most `largest`), from the pool or made by `create`
    /// (which is given the size to make); made buffers are registered with `bind_groups`, so
    /// groups over them are kept as over a tensor's.
    pub(crate) fn take<'a>(
        &'a self,
        bytes: u64,
        largest: u64,
        bind_groups: &'a BindGroupCache,
        create: impl FnOnce(u64) -> wgpu::Buffer,
    ) -> Scratch<'a> {
        // Power-of-two classes, so sizes that drift a little share buffers.
        let rounded = bytes.max(256).next_power_of_two();
        let class = if rounded <= largest { rounded } else { bytes };
        let reused = self
            .lock()
            .by_class
            .get_mut(&class)
            .and_then(|buffers| buffers.pop());
        let buffer = reused.unwrap_or_else(|| {
            let buffer = create(class);
            bind_groups.track(&buffer);
            self.lock().owned_bytes += class;
            buffer
        });
        Scratch {
            buffer: Some(buffer),
            class,
            pool: self,
            bind_groups,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Free> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}
