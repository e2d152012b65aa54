//! Frames that stay on the GPU (`shaders/display.wgsl`): when the window renders on the
//! backend's own device, a method's image goes from its storage buffer into a texture that
//! egui samples (a native texture), with no download and no re-upload.

use std::sync::{Arc, Mutex, OnceLock};

use super::{GpuBackend, PARAM_LAYOUT_ENTRY, Tensor, buffer, compute_pipeline};

pub(super) const SOURCE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/display.wgsl"));

/// The texture format egui's renderer samples native textures in.
pub const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// A size×size picture on the device, rewritten in place at every presented step.
pub struct DisplayTexture {
    pub texture: wgpu::Texture,
    pub view: wgpu::TextureView,
    pub size: usize,
    /// The bind group of the last image presented into it (a method presents the same
    /// tensor every step).
    bound: Mutex<Option<(wgpu::Buffer, wgpu::BindGroup)>>,
}

impl std::fmt::Debug for DisplayTexture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DisplayTexture({0}×{0})", self.size)
    }
}

#[derive(Default)]
pub(super) struct Kernels {
    built: OnceLock<(wgpu::ComputePipeline, wgpu::BindGroupLayout)>,
}

impl Kernels {
    fn built(&self, device: &wgpu::Device) -> &(wgpu::ComputePipeline, wgpu::BindGroupLayout) {
        self.built.get_or_init(|| {
            let texture = wgpu::BindGroupLayoutEntry {
                binding: 2,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::StorageTexture {
                    access: wgpu::StorageTextureAccess::WriteOnly,
                    format: FORMAT,
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
                count: None,
            };
            let image = wgpu::BindGroupLayoutEntry {
                binding: 1,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: true },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                ..texture
            };
            compute_pipeline(
                device,
                "display",
                SOURCE.into(),
                "present",
                &[PARAM_LAYOUT_ENTRY, image, texture],
                true,
            )
        })
    }
}

/// Writes the size×size RGB `image` into `picture` (made, or remade at a new size) and
/// submits, so the window's next frame shows it.
pub(super) fn present(
    gpu: &GpuBackend,
    image: &Tensor,
    size: usize,
    picture: &mut Option<Arc<DisplayTexture>>,
) {
    assert_eq!(
        image.shape(),
        (size * size, 3),
        "present: image must be size²×3"
    );
    if picture.as_ref().is_none_or(|p| p.size != size) {
        let texture = gpu.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("displayed frame"),
            size: wgpu::Extent3d {
                width: size as u32,
                height: size as u32,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: FORMAT,
            usage: wgpu::TextureUsages::STORAGE_BINDING
                | wgpu::TextureUsages::TEXTURE_BINDING
                | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let view = texture.create_view(&Default::default());
        *picture = Some(Arc::new(DisplayTexture {
            texture,
            view,
            size,
            bound: Mutex::new(None),
        }));
    }
    let picture = picture.as_ref().expect("made above");
    let (pipeline, layout) = gpu.kernels.display.built(&gpu.device);
    let mut bound = picture.bound.lock().unwrap_or_else(|e| e.into_inner());
    let source = buffer(image);
    if bound.as_ref().is_none_or(|(kept, _)| kept != source) {
        let group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("display"),
            layout,
            entries: &[
                gpu.param_entry(),
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: source.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::TextureView(&picture.view),
                },
            ],
        });
        *bound = Some((source.clone(), group));
    }
    let (_, group) = bound.as_ref().expect("bound above");
    let groups = (size as u32).div_ceil(8);
    gpu.record_dispatch(pipeline, group, &[size as u32], [groups, groups, 1]);
    gpu.flush();
}

/// The texture's pixels as RGBA bytes, row by row (tests compare them with the host's).
#[cfg(feature = "testing")]
pub(super) fn read(gpu: &GpuBackend, picture: &DisplayTexture) -> Vec<u8> {
    let size = picture.size as u32;
    let row_bytes = 4 * size;
    let padded = row_bytes.next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("displayed frame readback"),
        size: u64::from(padded * size),
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    {
        let mut pending = gpu.pending.lock().unwrap();
        gpu.encoder(&mut pending).copy_texture_to_buffer(
            picture.texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &staging,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded),
                    rows_per_image: Some(size),
                },
            },
            wgpu::Extent3d {
                width: size,
                height: size,
                depth_or_array_layers: 1,
            },
        );
    }
    let bytes: Vec<u8> = gpu.read_back(&staging, (padded * size) as usize);
    bytes
        .chunks_exact(padded as usize)
        .flat_map(|row| row[..row_bytes as usize].to_vec())
        .collect()
}
