//! The wgpu backend: tensors live in storage buffers and every operation is a compute pass.
//!
//! Work is recorded into one command encoder held behind a mutex and submitted lazily — when a
//! result is read back, when [`Backend::finish`] is called, or when [`PARAM_SLOTS`] passes are
//! queued — so a training step costs one submission, not one per operation. Nothing is read
//! back except by [`Backend::download`] and the operations that return host values (gram, mse,
//! sum, the per-level losses).
//!
//! Each shader concern has its own module here (`linear`, `reservoir`, `gram`, …) owning its
//! pipelines; `open` sets up the device, and this module holds the dispatch plumbing they share: lazily built
//! pipelines ([`Kernel`]), a ring of per-pass uniform parameters addressed by dynamic offsets,
//! and dispatch grids that respect the per-dimension workgroup limit.

mod bind_groups;
mod display;
mod elementwise;
mod fourier;
mod gelu;
mod gram;
mod grids;
mod haar;
mod linear;
mod loss;
mod modules;
mod open;
mod optim;
mod reduce;
mod reductions;
mod reservoir;
mod scratch;
mod shared;
mod ssim;
mod tiled;
mod upsample;

pub use display::DisplayTexture;
pub use modules::shader_modules;
pub use open::device_descriptor;
use open::runs_compute_shaders;
#[cfg(feature = "testing")]
pub use open::{test_backend, test_cooperative_backend, test_shared_device};
pub use shared::{DeviceLoss, SharedDevice, SubmitPause};
use tiled::ProductTile;
pub use tiled::{FloatFloatTile, GRAM_TILES, SHAPES as TILE_SHAPES, TileShape};

use std::borrow::Cow;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use wgpu::util::DeviceExt;

use super::{
    Activation, AdamStep, Backend, BackendKind, Grids, LevelSums, MemoryBudget, Storage, Tensor,
    Upsample,
};

/// Bytes of uniform parameters one pass may use (16 words); every shader's `Params` fits.
const PARAM_BYTES: u64 = 64;
/// Passes recorded before the encoder is submitted; also the number of parameter slots in the
/// ring, since the ring is rewritten once per submission.
const PARAM_SLOTS: usize = 256;
/// The `opaque_zero` parameter of the float-float shaders: always 0, but passed at run time so
/// the shader compiler cannot see it and simplify away the rounding errors that float-float
/// arithmetic captures (see `shaders/gram.wgsl`).
const OPAQUE_ZERO: u32 = 0;
/// The largest readback that reuses the kept staging buffer; larger ones get their own.
const KEPT_STAGING_BYTES: u64 = 16 << 20;
/// Invocations per workgroup of the one-dimensional kernels (`@workgroup_size(256)`).
const LINEAR_WORKGROUP: usize = 256;

/// What a [`GpuBackend`] has done so far: bind groups created (kept or not) and kept now,
/// command submissions, and readbacks (each one a host wait for the GPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuCounters {
    pub bind_groups_created: u64,
    pub bind_groups_kept: usize,
    pub submissions: u64,
    pub readbacks: u64,
}

/// A GPU tensor's storage buffer.
pub struct GpuStorage {
    pub buffer: wgpu::Buffer,
    /// The backend's kept bind groups, told when this buffer goes.
    bind_groups: Arc<bind_groups::BindGroupCache>,
}

impl GpuStorage {
    fn new(buffer: wgpu::Buffer, bind_groups: &Arc<bind_groups::BindGroupCache>) -> Self {
        bind_groups.track(&buffer);
        GpuStorage {
            buffer,
            bind_groups: Arc::clone(bind_groups),
        }
    }
}

impl Drop for GpuStorage {
    fn drop(&mut self) {
        self.bind_groups.forget(&self.buffer);
    }
}

/// Whether a storage binding is only read by its kernel.
#[derive(Clone, Copy)]
pub(crate) enum Access {
    Read,
    ReadWrite,
}

/// Where a kernel's WGSL comes from.
#[derive(Clone, Copy)]
enum Source {
    /// A file used as it is.
    Plain(&'static str),
    /// A file on the register-tiled core, composed for one tile.
    Tiled {
        file: &'static str,
        products: &'static [&'static str],
        tile: tiled::Tile,
    },
}

/// One compute entry point, built on first use: creating every pipeline up front costs
/// seconds on software adapters, and most runs use a handful.
pub(crate) struct Kernel {
    label: &'static str,
    source: Source,
    entry_point: &'static str,
    /// Storage bindings after the uniform parameters at binding 0, in the order that
    /// [`GpuBackend::dispatch`] receives their buffers.
    storage: &'static [(u32, Access)],
    /// The reduction core the module is composed with, for files that reduce.
    sum_core: Option<reductions::SumCore>,
    built: OnceLock<(wgpu::ComputePipeline, wgpu::BindGroupLayout)>,
}

impl Kernel {
    pub(crate) const fn new(
        label: &'static str,
        source: &'static str,
        entry_point: &'static str,
        storage: &'static [(u32, Access)],
    ) -> Self {
        Kernel {
            label,
            source: Source::Plain(source),
            entry_point,
            storage,
            sum_core: None,
            built: OnceLock::new(),
        }
    }

    /// An entry point of `file`, a file on the register-tiled core defining `products`,
    /// compiled for `tile`.
    const fn tiled(
        label: &'static str,
        file: &'static str,
        products: &'static [&'static str],
        entry_point: &'static str,
        storage: &'static [(u32, Access)],
        tile: tiled::Tile,
    ) -> Self {
        Kernel {
            label,
            source: Source::Tiled {
                file,
                products,
                tile,
            },
            entry_point,
            storage,
            sum_core: None,
            built: OnceLock::new(),
        }
    }

    /// This kernel composed with the reduction core `core`.
    pub(crate) fn with_sum_core(mut self, core: reductions::SumCore) -> Self {
        self.sum_core = Some(core);
        self
    }

    fn built(&self, device: &wgpu::Device) -> &(wgpu::ComputePipeline, wgpu::BindGroupLayout) {
        self.built.get_or_init(|| {
            let source = match self.source {
                Source::Plain(source) => Cow::Borrowed(source),
                Source::Tiled {
                    file,
                    products,
                    tile,
                } => Cow::Owned(tile.compose(file, products)),
            };
            let source = match self.sum_core {
                Some(core) => Cow::Owned(core.compose(&source)),
                None => source,
            };
            let mut entries = vec![PARAM_LAYOUT_ENTRY];
            entries.extend(self.storage.iter().map(|&(binding, access)| {
                wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: matches!(access, Access::Read),
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                }
            }));
            // The tiled core writes every staged element before reading it, so the zero fill
            // WebGPU does by default would be wasted work on each dispatch.
            let zero_initialize = matches!(self.source, Source::Plain(_));
            compute_pipeline(
                device,
                self.label,
                source,
                self.entry_point,
                &entries,
                zero_initialize,
            )
        })
    }
}

/// Binding 0 of every kernel: its slot of the parameter ring, at a dynamic offset.
const PARAM_LAYOUT_ENTRY: wgpu::BindGroupLayoutEntry = wgpu::BindGroupLayoutEntry {
    binding: 0,
    visibility: wgpu::ShaderStages::COMPUTE,
    ty: wgpu::BindingType::Buffer {
        ty: wgpu::BufferBindingType::Uniform,
        has_dynamic_offset: true,
        min_binding_size: None,
    },
    count: None,
};

/// The pipeline of `entry_point` in the WGSL `source`, over one bind group laid out as
/// `entries` (binding 0 being [`PARAM_LAYOUT_ENTRY`]), and that layout.
fn compute_pipeline(
    device: &wgpu::Device,
    label: &str,
    source: Cow<'_, str>,
    entry_point: &str,
    entries: &[wgpu::BindGroupLayoutEntry],
    zero_initialize_workgroup_memory: bool,
) -> (wgpu::ComputePipeline, wgpu::BindGroupLayout) {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some(entry_point),
        compilation_options: wgpu::PipelineCompilationOptions {
            zero_initialize_workgroup_memory,
            ..Default::default()
        },
        cache: None,
    });
    (pipeline, layout)
}

/// Work recorded but not yet submitted.
#[derive(Default)]
struct Pending {
    /// The compute pass consecutive dispatches share (each dispatch is its own synchronisation
    /// scope, so they need no pass of their own); a copy or a submission ends it. Declared
    /// before the encoder it records into, so it is dropped (ended) first.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    /// Uniform parameters of the recorded passes, one `param_stride` slot each, uploaded into
    /// the ring just before the encoder is submitted.
    params: Vec<u8>,
}

/// The pipelines of every shader concern.
struct Kernels {
    display: display::Kernels,
    fourier: fourier::Kernels,
    reservoir: reservoir::Kernels,
    linear: linear::Kernels,
    gram: gram::Kernels,
    haar: haar::Kernels,
    upsample: upsample::Kernels,
    grids: grids::Kernels,
    gelu: gelu::Kernels,
    loss: loss::Kernels,
    ssim: ssim::Kernels,
    reduce: reduce::Kernels,
    elementwise: elementwise::Kernels,
    optim: optim::Kernels,
}

/// The wgpu implementation of [`Backend`].
pub struct GpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// Uniform buffer of [`PARAM_SLOTS`] parameter slots, bound with a dynamic offset per pass.
    param_ring: wgpu::Buffer,
    /// Distance between parameter slots: the adapter's uniform offset alignment (at least
    /// [`PARAM_BYTES`]).
    param_stride: usize,
    pending: Mutex<Pending>,
    kernels: Kernels,
    /// Bind groups kept between dispatches, for the tensors alive.
    bind_groups: Arc<bind_groups::BindGroupCache>,
    /// Partial-sum temporaries reused between operations.
    scratch: scratch::ScratchPool,
    /// The mappable buffer small readbacks reuse (scalars' partials, images up to
    /// [`KEPT_STAGING_BYTES`]).
    staging: Mutex<Option<wgpu::Buffer>>,
    /// Submissions and readbacks (host waits) so far, for tests and the bench.
    submissions: std::sync::atomic::AtomicU64,
    readbacks: std::sync::atomic::AtomicU64,
    id: u64,
    /// Why the device was lost, once wgpu says so (driver reset, GPU removed).
    lost: DeviceLoss,
    /// Where the window shares the device, its surface's pauses (see [`SubmitPause`]).
    submit_pause: SubmitPause,
    /// A tile shape every tiled product uses instead of the adapter's choice
    /// (`INRLAB_TILE_SHAPE`, tests).
    forced_tile_shape: Option<TileShape>,
    /// The Gram kernel's tile: the deepest the adapter's workgroup memory holds.
    gram_tile: FloatFloatTile,
    /// Whether `gram` takes the kernel on software adapters too (tests).
    gram_kernel_everywhere: bool,
    /// Whether reductions use subgroup operations (the device has `Features::SUBGROUP`).
    subgroups: bool,
    /// The cooperative-matrix tile the device can run: the adapter offers one and the device
    /// was granted its features.
    cooperative_offered: Option<tiled::Tile>,
    /// The cooperative tile the dense layers' wide products use: the offered one on hardware
    /// adapters (software ones emulate the matrix units, slower than their f32 path).
    cooperative: Option<tiled::Tile>,
}

impl GpuBackend {
    /// The device's limits (the adapter's own: everything it offers is requested).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// The tile shape of a tiled product with `columns` output columns on this adapter.
    fn tile_shape(&self, columns: usize) -> TileShape {
        self.forced_tile_shape
            .unwrap_or_else(|| TileShape::for_columns(columns, &self.limits))
    }

    /// The tile of a dense-layer product with `columns` output columns: the cooperative tile
    /// for products wider than the narrow shape (the hidden layers, nearly all the work) where
    /// the adapter has one, else the f32 shape. A forced shape applies to every product.
    fn dense_tile(&self, columns: usize) -> ProductTile {
        match self.cooperative {
            Some(tile)
                if self.forced_tile_shape.is_none() && columns > TileShape::Narrow.columns() =>
            {
                ProductTile::Cooperative(tile)
            }
            _ => ProductTile::Shape(self.tile_shape(columns)),
        }
    }

    /// Whether the dense layers' wide products run on cooperative matrices (f16 operands,
    /// f32 sums), and their fragment edge.
    pub fn cooperative_fragment(&self) -> Option<usize> {
        self.cooperative.map(|tile| tile.fragment())
    }

    /// This backend with the dense layers on f32 even where cooperative matrices are there,
    /// for tests held to f32 tolerances and for comparing the paths.
    pub fn without_cooperative_matrices(self) -> Self {
        self.with_cooperative(None)
    }

    /// This backend with the dense layers' wide products on cooperative matrices wherever the
    /// device can run them, software adapters included (tests, and the bench beside the f32
    /// path).
    pub fn with_cooperative_matrices_everywhere(self) -> Self {
        let offered = self.cooperative_offered;
        self.with_cooperative(offered)
    }

    fn with_cooperative(mut self, tile: Option<tiled::Tile>) -> Self {
        if self.cooperative != tile {
            self.cooperative = tile;
            self.kernels.linear = linear::Kernels::new(tile);
        }
        self
    }

    /// Whether the device can run cooperative matrices (see [`Self::cooperative_fragment`]
    /// for whether the dense layers use them).
    pub fn offers_cooperative_matrices(&self) -> bool {
        self.cooperative_offered.is_some()
    }

    /// This backend with every tiled product on `shape`, so tests can run each shape's
    /// kernels on whatever adapter they have.
    #[cfg(feature = "testing")]
    pub fn with_tile_shape(mut self, shape: TileShape) -> Self {
        self.forced_tile_shape = Some(shape);
        self
    }

    /// This backend with `gram` on the float-float kernel even on a software adapter, so
    /// tests can run the methods through the path hardware adapters take.
    #[cfg(feature = "testing")]
    pub fn with_gram_kernel_everywhere(mut self) -> Self {
        self.gram_kernel_everywhere = true;
        self
    }

    /// This backend with the Gram kernel on `tile` (one of [`GRAM_TILES`]), so tests can run
    /// the shallow tile on adapters that hold the deep one.
    #[cfg(feature = "testing")]
    pub fn with_gram_tile(mut self, tile: FloatFloatTile) -> Self {
        self.gram_tile = tile;
        self
    }

    /// The pixels of a presented picture as RGBA bytes, row by row.
    #[cfg(feature = "testing")]
    pub fn read_display_texture(&self, picture: &DisplayTexture) -> Vec<u8> {
        display::read(self, picture)
    }

    /// Whether reductions run on subgroup operations on this device.
    pub fn uses_subgroups(&self) -> bool {
        self.subgroups
    }

    /// This backend with reductions through workgroup memory even where the device has
    /// subgroup operations, so tests can check both paths on one adapter.
    #[cfg(feature = "testing")]
    pub fn without_subgroups(mut self) -> Self {
        self.subgroups = false;
        self
    }

    /// Whether the adapter is a software rasteriser (lavapipe, llvmpipe, WARP).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// A zero-filled storage buffer of at least `bytes` (never empty: bindings may not be), or
    /// an error when the adapter cannot bind or allocate one that large.
    fn storage_buffer(&self, label: &str, bytes: u64) -> anyhow::Result<wgpu::Buffer> {
        self.check_size(bytes)?;
        self.out_of_memory_as_error(bytes, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(4),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }

    /// A storage buffer holding `data` (a tensor, or a temporary operand such as split readout
    /// weights); fails as [`Self::storage_buffer`] does.
    fn storage_buffer_from(&self, label: &str, data: &[f32]) -> anyhow::Result<wgpu::Buffer> {
        if data.is_empty() {
            return self.storage_buffer(label, 4);
        }
        let bytes = std::mem::size_of_val(data) as u64;
        self.check_size(bytes)?;
        self.out_of_memory_as_error(bytes, || {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytemuck::cast_slice(data),
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                })
        })
    }

    /// A temporary buffer inside an operation, whose signature has no room for an error. The
    /// methods' memory estimates count these temporaries against the same limit before a
    /// method is built, so reaching the panic means an estimate is wrong.
    fn scratch_buffer(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.storage_buffer(label, bytes)
            .unwrap_or_else(|error| panic!("{label}: {error:#}"))
    }

    /// [`Self::scratch_buffer`] holding `data`.
    fn scratch_buffer_from(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        self.storage_buffer_from(label, data)
            .unwrap_or_else(|error| panic!("{label}: {error:#}"))
    }

    /// A temporary from the pool, for kernels that write every element of it before reading
    /// it (partial sums): its contents are whatever its last user left. Fails as
    /// [`Self::scratch_buffer`] does.
    fn pooled_scratch(&self, label: &'static str, bytes: u64) -> scratch::Scratch<'_> {
        let (largest, _) = self.largest_buffer();
        self.scratch
            .take(bytes, largest, &self.bind_groups, |size| {
                self.scratch_buffer(label, size)
            })
    }

    /// Runs `create` with out-of-memory errors captured instead of sent to wgpu's uncaptured
    /// error handler, which panics.
    fn out_of_memory_as_error(
        &self,
        bytes: u64,
        create: impl FnOnce() -> wgpu::Buffer,
    ) -> anyhow::Result<wgpu::Buffer> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = create();
        match pollster::block_on(scope.pop()) {
            None => Ok(buffer),
            Some(error) => anyhow::bail!(
                "the GPU ({}) cannot allocate a {}-byte buffer: {error}",
                self.adapter_name(),
                bytes
            ),
        }
    }

    /// The largest buffer this adapter binds: the smaller of its storage-binding and buffer
    /// limits, with the name of the one that binds.
    fn largest_buffer(&self) -> (u64, &'static str) {
        let binding = self.limits.max_storage_buffer_binding_size;
        let buffer = self.limits.max_buffer_size;
        if binding <= buffer {
            (binding, "max_storage_buffer_binding_size")
        } else {
            (buffer, "max_buffer_size")
        }
    }

    fn check_size(&self, bytes: u64) -> anyhow::Result<()> {
        let (largest, limit) = self.largest_buffer();
        anyhow::ensure!(
            bytes <= largest,
            "a {} tensor exceeds this adapter's {limit} of {} ({}); use a smaller size or \
             the CPU backend",
            super::format_gb(bytes),
            super::format_gb(largest),
            self.adapter_name(),
        );
        Ok(())
    }

    /// Records one compute pass of `kernel` over `groups` workgroups. `params` are the words of
    /// the shader's uniform `Params` (f32 fields as `to_bits`), `buffers` its storage bindings
    /// in the kernel's order.
    fn dispatch(
        &self,
        kernel: &Kernel,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) {
        assert_eq!(buffers.len(), kernel.storage.len(), "{}", kernel.label);
        assert!(params.len() * 4 <= PARAM_BYTES as usize);
        if groups.contains(&0) {
            return;
        }
        let (pipeline, layout) = kernel.built(&self.device);
        let bind_group =
            self.bind_groups.get_or_create(layout, buffers, || {
                let mut entries = vec![self.param_entry()];
                entries.extend(kernel.storage.iter().zip(buffers).map(
                    |(&(binding, _), buffer)| wgpu::BindGroupEntry {
                        binding,
                        resource: buffer.as_entire_binding(),
                    },
                ));
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(kernel.label),
                    layout,
                    entries: &entries,
                })
            });
        self.record_dispatch(pipeline, &bind_group, params, groups);
    }

    /// Binding 0 of a kernel's bind group: the parameter ring (bound at each dispatch's slot).
    fn param_entry(&self) -> wgpu::BindGroupEntry<'_> {
        wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.param_ring,
                offset: 0,
                size: NonZeroU64::new(PARAM_BYTES),
            }),
        }
    }

    /// Records one dispatch of `pipeline` over `bind_group`, whose binding 0 is the parameter
    /// ring (at the slot `params` are written to).
    fn record_dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        params: &[u32],
        groups: [u32; 3],
    ) {
        let mut pending = self.pending.lock().unwrap();
        let offset = pending.params.len();
        pending
            .params
            .extend_from_slice(bytemuck::cast_slice(params));
        pending.params.resize(offset + self.param_stride, 0);
        {
            let pass = self.pass(&mut pending);
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind_group, &[offset as u32]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        if pending.params.len() >= PARAM_SLOTS * self.param_stride {
            self.submit(&mut pending);
        }
    }

    /// The encoder, with any open compute pass ended so that copies land in order.
    fn encoder<'a>(&self, pending: &'a mut Pending) -> &'a mut wgpu::CommandEncoder {
        pending.pass = None;
        self.open_encoder(&mut pending.encoder)
    }

    fn open_encoder<'a>(
        &self,
        encoder: &'a mut Option<wgpu::CommandEncoder>,
    ) -> &'a mut wgpu::CommandEncoder {
        encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("inrlab"),
                })
        })
    }

    /// The open compute pass, begun if there is none.
    fn pass<'a>(&self, pending: &'a mut Pending) -> &'a mut wgpu::ComputePass<'static> {
        if pending.pass.is_none() {
            let pass = self
                .open_encoder(&mut pending.encoder)
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("inrlab"),
                    timestamp_writes: None,
                })
                .forget_lifetime();
            pending.pass = Some(pass);
        }
        pending.pass.as_mut().expect("just begun")
    }

    /// Whether the device writes timestamps ([`Self::gpu_milliseconds`]).
    pub fn has_timestamps(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// GPU milliseconds of the dispatches `work` records, from timestamps written at the
    /// beginning and end of the one compute pass that holds them, where the device has
    /// `TIMESTAMP_QUERY`; `None` otherwise. `work` must record no copy and at most one
    /// submission's worth of dispatches, since either would end the timed pass early.
    pub fn gpu_milliseconds(&self, work: impl FnOnce()) -> Option<f64> {
        if !self.has_timestamps() {
            return None;
        }
        let queries = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timed pass"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        {
            let mut pending = self.pending.lock().unwrap();
            pending.pass = None;
            let pass = self
                .open_encoder(&mut pending.encoder)
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("timed"),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &queries,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    }),
                })
                .forget_lifetime();
            pending.pass = Some(pass);
        }
        work();
        let resolved = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        {
            let mut pending = self.pending.lock().unwrap();
            self.encoder(&mut pending)
                .resolve_query_set(&queries, 0..2, &resolved, 0);
        }
        let ticks: Vec<u64> = self.read_back(&resolved, 2);
        let nanoseconds_per_tick = f64::from(self.queue.get_timestamp_period());
        Some(ticks[1].saturating_sub(ticks[0]) as f64 * nanoseconds_per_tick / 1e6)
    }

    /// What the backend has done so far, for tests and the bench.
    pub fn counters(&self) -> GpuCounters {
        use std::sync::atomic::Ordering::Relaxed;
        GpuCounters {
            bind_groups_created: self.bind_groups.created(),
            bind_groups_kept: self.bind_groups.kept(),
            submissions: self.submissions.load(Relaxed),
            readbacks: self.readbacks.load(Relaxed),
        }
    }

    /// Records a buffer-to-buffer copy in order with the passes.
    fn record_copy(&self, source: &wgpu::Buffer, destination: &wgpu::Buffer, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut pending = self.pending.lock().unwrap();
        self.encoder(&mut pending)
            .copy_buffer_to_buffer(source, 0, destination, 0, bytes);
    }

    /// Submits everything recorded so far (without waiting for it). The parameter ring is
    /// written first; queue writes are ordered after earlier submissions, so reusing the ring
    /// for the next batch is safe.
    fn submit(&self, pending: &mut Pending) {
        pending.pass = None;
        if let Some(encoder) = pending.encoder.take() {
            if !pending.params.is_empty() {
                self.queue
                    .write_buffer(&self.param_ring, 0, &pending.params);
            }
            self.submit_pause.wait();
            self.queue.submit([encoder.finish()]);
            self.submissions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        pending.params.clear();
    }

    fn flush(&self) {
        let mut pending = self.pending.lock().unwrap();
        self.submit(&mut pending);
    }

    /// Copies the first `count` elements of `source` to the host, waiting for all queued work.
    fn read_back<T: bytemuck::Pod>(&self, source: &wgpu::Buffer, count: usize) -> Vec<T> {
        self.read_back_many(&[(source, count)])
            .pop()
            .expect("one source, one result")
    }

    /// The first elements of several buffers, `(buffer, count)`, copied to the host with one
    /// wait for all queued work.
    fn read_back_many<T: bytemuck::Pod>(&self, sources: &[(&wgpu::Buffer, usize)]) -> Vec<Vec<T>> {
        let size = std::mem::size_of::<T>() as u64;
        let total: u64 = sources.iter().map(|&(_, count)| count as u64 * size).sum();
        if total == 0 {
            return vec![Vec::new(); sources.len()];
        }
        let mut kept = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        let own;
        let staging = if total <= KEPT_STAGING_BYTES {
            if kept.as_ref().is_none_or(|buffer| buffer.size() < total) {
                // Grown in powers of two, so a few sizes settle on one buffer.
                *kept = Some(self.staging_buffer(total.next_power_of_two().max(1 << 16)));
            }
            kept.as_ref().expect("just made")
        } else {
            own = self.staging_buffer(total);
            &own
        };
        {
            let mut pending = self.pending.lock().unwrap();
            let encoder = self.encoder(&mut pending);
            let mut offset = 0;
            for &(source, count) in sources {
                let bytes = count as u64 * size;
                if bytes > 0 {
                    encoder.copy_buffer_to_buffer(source, 0, staging, offset, bytes);
                }
                offset += bytes;
            }
            self.submit(&mut pending);
        }
        self.readbacks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..total, move |result| {
            let _ = sender.send(result);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("GPU device lost while waiting for a readback");
        receiver
            .recv()
            .expect("readback callback dropped")
            .expect("mapping the readback buffer failed");
        let results = {
            let mapped = staging
                .get_mapped_range(..total)
                .expect("readback buffer not mapped");
            let all = bytemuck::cast_slice::<u8, T>(&mapped);
            let mut first = 0;
            sources
                .iter()
                .map(|&(_, count)| {
                    first += count;
                    all[first - count..first].to_vec()
                })
                .collect()
        };
        staging.unmap();
        results
    }

    fn staging_buffer(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A grid of `invocations` one-dimensional invocations in 256-wide workgroups, wrapped
    /// into y beyond the per-dimension limit (shaders index `gid.x + gid.y·groups.x·256`).
    fn linear_grid(&self, invocations: usize) -> [u32; 3] {
        let groups = invocations.div_ceil(LINEAR_WORKGROUP);
        let max = self.limits.max_compute_workgroups_per_dimension as usize;
        let x = groups.clamp(1, max);
        let y = groups.div_ceil(x);
        assert!(
            y <= max,
            "{invocations} invocations exceed the dispatch limit"
        );
        [x as u32, y as u32, u32::from(groups > 0)]
    }

    /// A grid of `column_tiles × row_tiles` workgroups; row tiles beyond the per-dimension limit
    /// fold into z (shaders use `group.y + group.z·groups.y` and return past the last row).
    fn tile_grid(&self, column_tiles: usize, row_tiles: usize) -> [u32; 3] {
        let max = self.limits.max_compute_workgroups_per_dimension as usize;
        assert!(
            column_tiles <= max,
            "{column_tiles} column tiles exceed the dispatch limit"
        );
        let y = row_tiles.clamp(1, max);
        let z = row_tiles.div_ceil(y);
        assert!(z <= max, "{row_tiles} row tiles exceed the dispatch limit");
        [column_tiles as u32, y as u32, z as u32]
    }

    /// The Gram product by the float-float kernel, whatever the adapter.
    pub fn gram_on_device(&self, blocks: &[&Tensor], b: &Tensor) -> Vec<f64> {
        gram::gram(self, blocks, b)
    }

    /// The Gram product of the downloaded operands, computed on the host in f64 (faer).
    ///
    /// On a software adapter this is ~9× faster than the register-tiled float-float kernel
    /// (16384×256 on lavapipe, 2 cores: 49 ms against 424 ms, both f64-accurate; the kernel
    /// before tiling took 83× the host's time); a hardware GPU runs the
    /// kernel in milliseconds and the download would dominate.
    pub fn gram_via_host(&self, blocks: &[&Tensor], b: &Tensor) -> Vec<f64> {
        use faer::{Accum, MatMut, MatRef, Par};
        let (rows, q) = b.shape();
        let right: Vec<f64> = self.download(b).into_iter().map(f64::from).collect();
        let total: usize = blocks.iter().map(|block| block.cols()).sum();
        let mut result = vec![0.0f64; total * q];
        let mut row_offset = 0;
        for block in blocks {
            assert_eq!(block.rows(), rows, "gram: every block must have B's rows");
            let p = block.cols();
            let downloaded;
            let left: &[f64] = if std::ptr::eq(*block, b) {
                &right
            } else {
                downloaded = self
                    .download(block)
                    .into_iter()
                    .map(f64::from)
                    .collect::<Vec<_>>();
                &downloaded
            };
            faer::linalg::matmul::matmul(
                MatMut::from_row_major_slice_mut(
                    &mut result[row_offset * q..(row_offset + p) * q],
                    p,
                    q,
                ),
                Accum::Replace,
                MatRef::from_row_major_slice(left, rows, p).transpose(),
                MatRef::from_row_major_slice(&right, rows, q),
                1.0f64,
                Par::rayon(0),
            );
            if std::ptr::eq(*block, b) {
                // Exactly symmetric, as the kernel's mirrored result is.
                let own = &mut result[row_offset * q..(row_offset + p) * q];
                for i in 0..p {
                    for j in 0..i {
                        own[i * q + j] = own[j * q + i];
                    }
                }
            }
            row_offset += p;
        }
        result
    }
}

/// The storage buffer of a tensor made by this backend.
fn buffer(tensor: &Tensor) -> &wgpu::Buffer {
    match &tensor.storage {
        Storage::Gpu(storage) => &storage.buffer,
        Storage::Cpu(_) => panic!("{tensor:?} belongs to the CPU backend, not the GPU backend"),
    }
}

impl Backend for GpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Gpu
    }
    fn instance_id(&self) -> u64 {
        self.id
    }

    #[cfg(feature = "testing")]
    fn lose_device_for_test(&self) {
        self.device.destroy();
    }

    fn device_counters(&self) -> Option<GpuCounters> {
        Some(self.counters())
    }

    fn as_gpu(&self) -> Option<&GpuBackend> {
        Some(self)
    }

    fn present(
        &self,
        image: &Tensor,
        size: usize,
        picture: &mut Option<Arc<DisplayTexture>>,
    ) -> bool {
        display::present(self, image, size, picture);
        true
    }

    fn lost(&self) -> Option<String> {
        // An idle backend polls before it answers, or it would not hear of the loss.
        self.lost.polled(&self.device)
    }

    fn adapter_name(&self) -> String {
        // Where the dense layers sum f16 operands the results differ from f32 ones in their
        // last digits, so the name (in the status bar and every file's record) says so.
        let cooperative = self
            .cooperative_fragment()
            .map(|edge| format!(", f16 {edge}×{edge} cooperative matrices"))
            .unwrap_or_default();
        format!(
            "{} ({:?}, {:?}{cooperative})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    fn upload(&self, rows: usize, cols: usize, data: &[f32]) -> anyhow::Result<Tensor> {
        assert_eq!(data.len(), rows * cols, "upload: data length ≠ rows·cols");
        let buffer = self.storage_buffer_from("tensor", data)?;
        Ok(Tensor::new(
            rows,
            cols,
            Storage::Gpu(GpuStorage::new(buffer, &self.bind_groups)),
        ))
    }

    fn zeros(&self, rows: usize, cols: usize) -> anyhow::Result<Tensor> {
        // wgpu zero-initialises new buffers.
        let buffer = self.storage_buffer("tensor", super::tensor_bytes(rows, cols)?)?;
        Ok(Tensor::new(
            rows,
            cols,
            Storage::Gpu(GpuStorage::new(buffer, &self.bind_groups)),
        ))
    }

    fn memory_budget(&self) -> MemoryBudget {
        let (largest, limit) = self.largest_buffer();
        MemoryBudget {
            host_free_bytes: super::host_free_bytes(),
            // A software adapter's buffers are host memory.
            tensors_in_host_memory: self.is_software(),
            keeps_f64_gram_copies: false,
            largest_tensor_bytes: largest,
            largest_tensor_limit: limit,
        }
    }

    fn download(&self, tensor: &Tensor) -> Vec<f32> {
        self.read_back(buffer(tensor), tensor.len())
    }

    fn write(&self, tensor: &mut Tensor, data: &[f32]) {
        assert_eq!(
            data.len(),
            tensor.len(),
            "write: data length ≠ tensor length"
        );
        if data.is_empty() {
            return;
        }
        // Queue writes land before the *next* submission: submit what was recorded first, so
        // passes recorded earlier still see the old contents.
        self.flush();
        self.queue
            .write_buffer(buffer(tensor), 0, bytemuck::cast_slice(data));
    }

    fn copy(&self, source: &Tensor, destination: &mut Tensor) {
        assert_eq!(source.shape(), destination.shape(), "copy: shapes differ");
        self.record_copy(
            buffer(source),
            buffer(destination),
            (source.len() * 4) as u64,
        );
    }

    fn finish(&self) {
        self.flush();
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("GPU device lost");
    }

    fn fourier_encode(&self, coords: &Tensor, frequencies: &Tensor, out: &mut Tensor) {
        fourier::encode(self, coords, frequencies, out);
    }

    fn reservoir_step(
        &self,
        input: &Tensor,
        input_weights: &Tensor,
        state: Option<&Tensor>,
        recurrent_weights: &Tensor,
        bias: &Tensor,
        out: &mut Tensor,
    ) {
        reservoir::step(
            self,
            input,
            input_weights,
            state,
            recurrent_weights,
            bias,
            out,
        );
    }

    fn dense_forward(
        &self,
        x: &Tensor,
        weights: &Tensor,
        bias: &Tensor,
        activation: Activation,
        out: &mut Tensor,
    ) {
        linear::forward(self, x, weights, bias, activation, out);
    }

    fn dense_backward(
        &self,
        x: &Tensor,
        weights: &Tensor,
        y: &Tensor,
        dy: &Tensor,
        activation: Activation,
        dx: Option<&mut Tensor>,
        d_weights: &mut Tensor,
        d_bias: &mut Tensor,
    ) {
        linear::backward(self, x, weights, y, dy, activation, dx, d_weights, d_bias);
    }

    /// The float-float kernel on hardware adapters; on software adapters, where the kernel
    /// is far slower than the host, the operands are downloaded and multiplied in f64.
    fn gram(&self, blocks: &[&Tensor], b: &Tensor) -> Vec<f64> {
        if self.is_software() && !self.gram_kernel_everywhere {
            self.gram_via_host(blocks, b)
        } else {
            self.gram_on_device(blocks, b)
        }
    }

    fn readout(&self, blocks: &[&Tensor], weights: &[f64], out: &mut Tensor) {
        gram::readout(self, blocks, weights, out);
    }

    fn haar_forward(&self, image: &Tensor, height: usize, width: usize, bands: &mut Tensor) {
        haar::forward(self, image, height, width, bands);
    }

    fn haar_inverse(&self, bands: &Tensor, height: usize, width: usize, image: &mut Tensor) {
        haar::inverse(self, bands, height, width, image);
    }

    fn upsample2x(
        &self,
        image: &Tensor,
        height: usize,
        width: usize,
        mode: Upsample,
        out: &mut Tensor,
    ) {
        upsample::upsample2x(self, image, height, width, mode, out);
    }

    fn mse(&self, a: &Tensor, b: &Tensor) -> f64 {
        reduce::mses(self, &[(a, b)])[0]
    }

    fn mses(&self, pairs: &[(&Tensor, &Tensor)]) -> Vec<f64> {
        reduce::mses(self, pairs)
    }

    fn sum(&self, a: &Tensor) -> f64 {
        reduce::sum(self, a)
    }

    fn clip(&self, x: &mut Tensor, lo: f32, hi: f32) {
        elementwise::clip(self, x, lo, hi);
    }

    fn axpy(&self, alpha: f32, x: &Tensor, y: &mut Tensor) {
        elementwise::axpy(self, alpha, x, y);
    }

    fn concat_cols(&self, parts: &[&Tensor], out: &mut Tensor) {
        elementwise::concat_cols(self, parts, out);
    }

    fn mse_grad(&self, pred: &Tensor, target: &Tensor, scale: f32, out: &mut Tensor) {
        elementwise::mse_grad(self, pred, target, scale, out);
    }

    fn haar_split(&self, image: &Tensor, grids: Grids, low: &mut Tensor, high: &mut Tensor) {
        grids::haar_split(self, image, grids, low, high);
    }
    fn haar_merge(&self, low: &Tensor, high: &Tensor, grids: Grids, image: &mut Tensor) {
        grids::haar_merge(self, low, high, grids, image);
    }
    fn depthwise3x3(&self, x: &Tensor, grids: Grids, weights: &Tensor, out: &mut Tensor) {
        grids::depthwise3x3(self, x, grids, weights, out);
    }
    fn depthwise3x3_backward(
        &self,
        x: &Tensor,
        d_out: &Tensor,
        grids: Grids,
        weights: &Tensor,
        d_x: &mut Tensor,
        d_weights: &mut Tensor,
    ) {
        grids::depthwise3x3_backward(self, x, d_out, grids, weights, d_x, d_weights);
    }
    fn gelu_residual(&self, pre: &Tensor, residual: &Tensor, out: &mut Tensor) {
        gelu::residual(self, pre, residual, out);
    }
    fn gelu_backward(&self, pre: &Tensor, d_out: &Tensor, d_pre: &mut Tensor) {
        gelu::backward(self, pre, d_out, d_pre);
    }
    fn residual_clip(&self, base: &Tensor, delta: &Tensor, out: &mut Tensor) {
        elementwise::residual_clip(self, base, delta, out);
    }
    fn clip_backward(&self, base: &Tensor, delta: &Tensor, grad: &mut Tensor) {
        elementwise::clip_backward(self, base, delta, grad);
    }
    fn l1_grad(
        &self,
        pred: &Tensor,
        target: &Tensor,
        grids: Grids,
        level_scales: &[f32],
        grad: &mut Tensor,
    ) -> Vec<LevelSums> {
        loss::l1_grad(self, pred, target, grids, level_scales, grad)
    }
    fn image_gradient_l1_grad(
        &self,
        pred: &Tensor,
        target: &Tensor,
        grids: Grids,
        level_scales: &[f32],
        grad: &mut Tensor,
    ) -> Vec<f64> {
        loss::image_gradient_l1_grad(self, pred, target, grids, level_scales, grad)
    }
    fn ssim_grad(
        &self,
        pred: &Tensor,
        target: &Tensor,
        grids: Grids,
        level_scales: &[f32],
        grad: &mut Tensor,
    ) -> Vec<f64> {
        ssim::ssim_grad(self, pred, target, grids, level_scales, grad)
    }
    fn upsample_nearest_backward(&self, d_up: &Tensor, grids: Grids, d_image: &mut Tensor) {
        grids::upsample_nearest_backward(self, d_up, grids, d_image);
    }
    fn add_diagonal_blocks(&self, block: &Tensor, out: &mut Tensor) {
        elementwise::add_diagonal_blocks(self, block, out);
    }
    fn sum_diagonal_blocks(&self, matrix: &Tensor, out: &mut Tensor) {
        elementwise::sum_diagonal_blocks(self, matrix, out);
    }

    fn sgd_momentum(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        velocity: &mut Tensor,
        learning_rate: f32,
        momentum: f32,
    ) {
        optim::sgd_momentum(self, param, grad, velocity, learning_rate, momentum);
    }

    fn adam(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        first_moment: &mut Tensor,
        second_moment: &mut Tensor,
        hyper: AdamStep,
    ) {
        optim::adam(self, param, grad, first_moment, second_moment, hyper);
    }
}
