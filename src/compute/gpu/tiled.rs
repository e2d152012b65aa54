//! The register-tiled product core (`shaders/tiled_product.wgsl`) and the tile shapes it is
//! compiled for.
//!
//! A tiled shader module is composed at pipeline-build time: a tile header, the core's shared
//! part, the core once per product the file defines (its `PRODUCT_` names renamed), then the
//! file. The shape is a per-dispatch choice made by the backend from the adapter's limits and the
//! product's output width (see [`TileShape::for_columns`]).

/// The core's source.
pub(super) const CORE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/tiled_product.wgsl"
));

/// The line of the core after which it is instantiated once per product.
const INSTANTIATE: &str = "\n// @instantiate\n";

/// Output tile of one workgroup; each invocation always owns an 8×8 block of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileShape {
    /// 128×128 outputs, 256 invocations: wide products on hardware adapters.
    Wide,
    /// 128 rows × 64 columns, 128 invocations: products with at most 64 output columns (the
    /// output layer, narrow hidden layers), where a 128-wide tile would mostly compute padding.
    Narrow,
    /// 64×64 outputs, 64 invocations: adapters whose workgroup limits cannot hold the others.
    Small,
}

/// Every shape, in the order of [`TileShape::index`].
pub const SHAPES: [TileShape; 3] = [TileShape::Wide, TileShape::Narrow, TileShape::Small];

impl TileShape {
    pub(super) const fn rows(self) -> usize {
        match self {
            TileShape::Wide | TileShape::Narrow => 128,
            TileShape::Small => 64,
        }
    }

    pub(super) const fn columns(self) -> usize {
        match self {
            TileShape::Wide => 128,
            TileShape::Narrow | TileShape::Small => 64,
        }
    }

    pub(super) const fn index(self) -> usize {
        match self {
            TileShape::Wide => 0,
            TileShape::Narrow => 1,
            TileShape::Small => 2,
        }
    }

    /// The shape `INRLAB_TILE_SHAPE` (wide, narrow or small) asks for, which every tiled
    /// product then uses: for measuring the shapes against each other on an adapter
    /// (`INRLAB_TILE_SHAPE=wide inrlab bench --backend gpu`). Unset: the adapter's choice.
    pub(super) fn from_environment() -> anyhow::Result<Option<Self>> {
        let Some(value) = std::env::var_os("INRLAB_TILE_SHAPE") else {
            return Ok(None);
        };
        let value = value.to_string_lossy().to_ascii_lowercase();
        SHAPES
            .into_iter()
            .find(|shape| format!("{shape:?}").to_ascii_lowercase() == value)
            .map(Some)
            .ok_or_else(|| {
                anyhow::anyhow!("INRLAB_TILE_SHAPE={value}: expected wide, narrow or small")
            })
    }

    /// Invocations of one workgroup.
    pub(super) const fn invocations(self) -> u32 {
        (self.rows() / 8 * self.columns() / 8) as u32
    }

    /// Workgroup bytes of the two staging buffers (8 deep, f32).
    pub(super) const fn staging_bytes(self) -> u32 {
        (2 * 8 * (self.rows() + self.columns()) * 4) as u32
    }

    /// The shape for a product with `columns` output columns: wide tiles unless the output is
    /// at most 64 wide, falling back to smaller ones where the adapter's limits cannot hold
    /// them. Software adapters take the same shapes: on lavapipe (2 cores) wide tiles measured
    /// 4.9 GFLOP/s for the 16384×256·256×256 forward product, narrow 4.7, small 4.4.
    pub(super) fn for_columns(columns: usize, limits: &wgpu::Limits) -> Self {
        let preferred = if columns <= TileShape::Narrow.columns() {
            TileShape::Narrow
        } else {
            TileShape::Wide
        };
        [preferred, TileShape::Narrow, TileShape::Small]
            .into_iter()
            .find(|shape| shape.fits(limits))
            .unwrap_or(TileShape::Small)
    }

    fn fits(self, limits: &wgpu::Limits) -> bool {
        self.invocations() <= limits.max_compute_invocations_per_workgroup
            && self.invocations() <= limits.max_compute_workgroup_size_x
            && self.staging_bytes() <= limits.max_compute_workgroup_storage_size
    }

    /// The module of `file` (which defines `products`) for this shape.
    pub(super) fn compose(self, file: &str, products: &[&str]) -> String {
        let (shared, per_product) = CORE
            .split_once(INSTANTIATE)
            .expect("tiled_product.wgsl has its @instantiate line");
        let mut module = format!(
            "const TILE_ROWS: u32 = {}u;\nconst TILE_COLUMNS: u32 = {}u;\n{shared}\n",
            self.rows(),
            self.columns()
        );
        for product in products {
            module.push_str(&per_product.replace("PRODUCT_", &format!("{product}_")));
        }
        module.push_str(file);
        module
    }
}

/// An entry point of a tiled file, one lazily built kernel per shape.
pub(super) struct TiledKernel {
    by_shape: [super::Kernel; 3],
}

impl TiledKernel {
    pub(super) fn new(
        label: &'static str,
        file: &'static str,
        products: &'static [&'static str],
        entry_point: &'static str,
        storage: &'static [(u32, super::Access)],
    ) -> Self {
        let kernel =
            |shape| super::Kernel::tiled(label, file, products, entry_point, storage, shape);
        TiledKernel {
            by_shape: [
                kernel(TileShape::Wide),
                kernel(TileShape::Narrow),
                kernel(TileShape::Small),
            ],
        }
    }

    /// Every shape's kernel composed with the reduction core `core`.
    pub(super) fn with_sum_core(self, core: super::reductions::SumCore) -> Self {
        TiledKernel {
            by_shape: self.by_shape.map(|kernel| kernel.with_sum_core(core)),
        }
    }

    pub(super) fn shaped(&self, shape: TileShape) -> &super::Kernel {
        &self.by_shape[shape.index()]
    }
}
