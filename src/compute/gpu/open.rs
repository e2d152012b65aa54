//! Opening the device: which adapter, what to ask of it (its limits, the features the kernels
//! use), the backend built on a device of its own or on the window's, and the test backends.

use std::sync::{Arc, Mutex};

use super::{
    DeviceLoss, FloatFloatTile, GpuBackend, Kernels, PARAM_BYTES, PARAM_SLOTS, Pending,
    SharedDevice, SubmitPause, TileShape, display, elementwise, fourier, gelu, gram, grids, haar,
    linear, loss, optim, reduce, reservoir, scratch, ssim, tiled, upsample,
};

/// Whether `adapter` runs compute shaders at all (some GL ones do not).
pub(super) fn runs_compute_shaders(adapter: &wgpu::Adapter) -> bool {
    adapter
        .get_downlevel_capabilities()
        .flags
        .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
}

/// What to ask of `adapter` for the kernels: all its limits, so tensors may be as large as its
/// storage bindings allow, and the optional features they use where it has them. The window
/// asks the same for the device it renders with, so the compute can share it.
pub fn device_descriptor(adapter: &wgpu::Adapter) -> wgpu::DeviceDescriptor<'static> {
    // Subgroups for the reductions; timestamps so the bench can report GPU time.
    let mut required_features =
        adapter.features() & (wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY);
    let mut experimental_features = wgpu::ExperimentalFeatures::disabled();
    // f16 cooperative matrices for the dense layers, where the adapter has a tile of them.
    if cooperative_allowed()
        && tiled::cooperative_tile(adapter, adapter.features(), &adapter.limits()).is_some()
    {
        required_features |= tiled::COOPERATIVE_FEATURES;
        experimental_features = cooperative_matrices_accepted();
    }
    wgpu::DeviceDescriptor {
        label: Some("inrlab"),
        required_limits: adapter.limits(),
        required_features,
        experimental_features,
        ..Default::default()
    }
}

/// wgpu's token for its experimental features, which cooperative matrices are.
// The crate's one unsafe call (the lint is deny, not forbid, for it).
#[allow(unsafe_code)]
fn cooperative_matrices_accepted() -> wgpu::ExperimentalFeatures {
    // SAFETY: wgpu marks cooperative matrices experimental: its implementation may still have
    // bugs. inrlab uses them in one shader family (tiled_cooperative.wgsl: loads, stores and
    // multiply-adds of whole fragments in uniform control flow), whose results the tests
    // compare with the CPU backend's, only where the adapter reports the matrix size and one
    // subgroup size; INRLAB_COOPERATIVE=off leaves them out.
    unsafe { wgpu::ExperimentalFeatures::enabled() }
}

/// Whether the dense layers may use cooperative matrices: `INRLAB_COOPERATIVE=off` keeps them
/// on f32 (to compare the paths, or to avoid a driver's bug).
pub(super) fn cooperative_allowed() -> bool {
    std::env::var("INRLAB_COOPERATIVE").map_or(true, |value| value != "off")
}

impl GpuBackend {
    /// Opens the best adapter wgpu finds (discrete before integrated before the rest, native
    /// APIs before GL) with the adapter's own limits, so tensors may be as large as its storage
    /// bindings allow. Software adapters (`DeviceType::Cpu`, e.g. lavapipe) are refused unless
    /// `allow_software`: they are far slower than the CPU backend.
    pub fn new(allow_software: bool) -> anyhow::Result<Self> {
        let rank = |adapter: &wgpu::Adapter| {
            let info = adapter.get_info();
            let device_rank = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => 0,
                wgpu::DeviceType::IntegratedGpu => 1,
                wgpu::DeviceType::VirtualGpu => 2,
                wgpu::DeviceType::Other => 3,
                wgpu::DeviceType::Cpu => 4,
            };
            let api_rank = u8::from(info.backend == wgpu::Backend::Gl);
            (device_rank, api_rank)
        };
        let usable = |adapter: &wgpu::Adapter| {
            (allow_software || adapter.get_info().device_type != wgpu::DeviceType::Cpu)
                && runs_compute_shaders(adapter)
        };
        // Native APIs first and GL only when they offer nothing: probing EGL is slow and noisy
        // on headless machines. WGPU_BACKEND, when set, decides alone. The automatic choice
        // (hardware only) skips GL entirely: hardware GPUs are exposed through Vulkan, Metal or
        // DX12, and EGL on a headless machine offers only llvmpipe after printing errors.
        let attempts = if std::env::var_os("WGPU_BACKEND").is_some() {
            vec![None]
        } else if !allow_software {
            vec![Some(wgpu::Backends::PRIMARY)]
        } else {
            vec![
                Some(wgpu::Backends::PRIMARY),
                Some(wgpu::Backends::SECONDARY),
            ]
        };
        let mut chosen = None;
        for backends in attempts {
            let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
            if let Some(backends) = backends {
                descriptor.backends = backends;
            }
            let instance = wgpu::Instance::new(descriptor);
            let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
            chosen = adapters.into_iter().filter(usable).min_by_key(rank);
            if chosen.is_some() {
                break;
            }
        }
        let adapter = chosen.ok_or_else(|| {
            anyhow::anyhow!(if allow_software {
                "no wgpu adapter with compute shaders found"
            } else {
                "no hardware wgpu adapter with compute shaders found"
            })
        })?;
        let (device, queue) =
            pollster::block_on(adapter.request_device(&device_descriptor(&adapter)))?;
        Self::from_device(&adapter, device, queue)
    }

    /// A backend on a device somebody else opened — the window's, so that its frames can be
    /// shown straight from the device ([`Backend::present`]). The kernels use the device's
    /// limits and features as granted (see [`device_descriptor`] for what to ask for).
    pub fn from_device(
        adapter: &wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> anyhow::Result<Self> {
        let loss = DeviceLoss::watch(&device);
        Self::on_device(adapter, device, queue, loss, SubmitPause::default())
    }

    /// [`Self::from_device`] on a shared device, reading the loss watch its owner reads.
    pub fn from_shared(shared: &SharedDevice) -> anyhow::Result<Self> {
        Self::on_device(
            &shared.adapter,
            shared.device.clone(),
            shared.queue.clone(),
            shared.loss.clone(),
            shared.pause.clone(),
        )
    }

    fn on_device(
        adapter: &wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
        lost: DeviceLoss,
        submit_pause: SubmitPause,
    ) -> anyhow::Result<Self> {
        let info = adapter.get_info();
        let limits = device.limits();
        let gram_tile = FloatFloatTile::gram_for(&limits);
        let features = device.features();
        let cooperative_offered =
            tiled::cooperative_tile(adapter, features, &limits).filter(|_| cooperative_allowed());
        // On lavapipe (Mesa 26.1, 2 cores) the 16384×256·256×256 forward product took 2.9× as
        // long on its emulated 8×8 fragments as on the f32 tiles (6.6 against 19.3 GFLOP/s).
        let cooperative = cooperative_offered.filter(|_| info.device_type != wgpu::DeviceType::Cpu);
        let param_stride =
            (limits.min_uniform_buffer_offset_alignment as usize).max(PARAM_BYTES as usize);
        let param_ring = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("parameter ring"),
            size: (param_stride * PARAM_SLOTS) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(GpuBackend {
            device,
            queue,
            info,
            limits,
            param_ring,
            param_stride,
            pending: Mutex::new(Pending::default()),
            kernels: Kernels {
                display: display::Kernels::default(),
                fourier: fourier::Kernels::new(),
                reservoir: reservoir::Kernels::new(),
                linear: linear::Kernels::new(cooperative),
                gram: gram::Kernels::new(),
                haar: haar::Kernels::new(),
                upsample: upsample::Kernels::new(),
                grids: grids::Kernels::new(),
                gelu: gelu::Kernels::new(),
                loss: loss::Kernels::new(),
                ssim: ssim::Kernels::new(),
                reduce: reduce::Kernels::new(),
                elementwise: elementwise::Kernels::new(),
                optim: optim::Kernels::new(),
            },
            bind_groups: Arc::default(),
            scratch: scratch::ScratchPool::default(),
            staging: Mutex::new(None),
            submissions: Default::default(),
            readbacks: Default::default(),
            id: crate::compute::next_instance_id(),
            lost,
            submit_pause,
            forced_tile_shape: TileShape::from_environment()?,
            gram_tile,
            gram_kernel_everywhere: false,
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            cooperative_offered,
            cooperative,
        })
    }
}

/// A device of its own on the adapter of [`test_backend`], opened as the window opens its
/// device ([`device_descriptor`]), for tests of the shared-device path; `None` where
/// `test_backend` skips.
#[cfg(feature = "testing")]
pub fn test_shared_device() -> Option<SharedDevice> {
    let wanted = test_backend()?.info.clone();
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .find(|adapter| {
            let info = adapter.get_info();
            info.name == wanted.name && info.backend == wanted.backend
        })
        .expect("the test backend's adapter is listed");
    let (device, queue) = pollster::block_on(adapter.request_device(&device_descriptor(&adapter)))
        .expect("a second device on the test backend's adapter");
    Some(SharedDevice::new(adapter, device, queue))
}

/// Opens a GPU backend for tests, software adapters included, under the project's policy:
/// when no adapter exists the test fails if `INRLAB_REQUIRE_GPU=1` (CI sets it, so a broken
/// driver setup cannot silently pass) and is otherwise skipped with a loud message. Only for
/// tests (the `testing` feature).
///
/// The dense layers are on f32 here even where the adapter has cooperative matrices: the tests
/// hold them to f32 tolerances. [`test_cooperative_backend`] gives the cooperative path.
#[cfg(feature = "testing")]
pub fn test_backend() -> Option<GpuBackend> {
    test_backend_as_opened().map(GpuBackend::without_cooperative_matrices)
}

/// The test backend with the dense layers on cooperative matrices, where the adapter offers
/// them (Mesa 26.1's lavapipe; NVIDIA's Vulkan driver); `None`, said loudly,
/// where it does not — a failure instead when `INRLAB_REQUIRE_COOPERATIVE=1`
/// (scripts/cooperative_lavapipe.sh sets it).
#[cfg(feature = "testing")]
pub fn test_cooperative_backend() -> Option<GpuBackend> {
    let backend = test_backend_as_opened()?.with_cooperative_matrices_everywhere();
    if backend.cooperative_fragment().is_some() {
        return Some(backend);
    }
    let why = format!(
        "{} offers no f16 cooperative matrices that inrlab can use",
        backend.info.name
    );
    if std::env::var("INRLAB_REQUIRE_COOPERATIVE").is_ok_and(|value| value == "1") {
        panic!("INRLAB_REQUIRE_COOPERATIVE=1 but {why}");
    }
    eprintln!(
        "\n********\n* not run on the cooperative path: {why}; see scripts/cooperative_lavapipe.sh\n********\n"
    );
    None
}

#[cfg(feature = "testing")]
fn test_backend_as_opened() -> Option<GpuBackend> {
    match GpuBackend::new(true) {
        Ok(backend) => Some(backend),
        Err(error) => {
            if std::env::var("INRLAB_REQUIRE_GPU").is_ok_and(|value| value == "1") {
                panic!("INRLAB_REQUIRE_GPU=1 but no GPU adapter could be opened: {error:#}");
            }
            eprintln!(
                "\n********\n* skipping: no GPU adapter ({error:#}); set INRLAB_REQUIRE_GPU=1 to fail instead\n********\n"
            );
            None
        }
    }
}
