//! The register-tiled product core (`shaders/tiled_product.wgsl`), its two arithmetics and the
//! tiles it is compiled for.
//!
//! A tiled shader module is composed at pipeline-build time: a tile header, the shared parts of
//! the core and of its arithmetic (`tiled_single.wgsl` for f32 sums, `tiled_float_float.wgsl`
//! for the f64-accurate ridge products), both once per product the file defines (their
//! `PRODUCT_` names renamed), then the file. The f32 products' tile is a per-dispatch choice
//! made by the backend from the adapter's limits and the product's output width (see
//! [`TileShape::for_columns`]); the float-float ones have tiles of their own
//! ([`FloatFloatTile`]).

/// The core's source.
pub(super) const CORE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/tiled_product.wgsl"
));
const SINGLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/tiled_single.wgsl"
));
const FLOAT_FLOAT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/tiled_float_float.wgsl"
));

/// The line of the core and of each arithmetic after which it is instantiated once per product.
const INSTANTIATE: &str = "\n// @instantiate\n";

/// What a tiled product sums in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Arithmetic {
    /// f32: 8×8 outputs per invocation.
    Single,
    /// Float-float (hi + lo of two f32): 4×4 outputs per invocation.
    FloatFloat,
}

impl Arithmetic {
    const fn source(self) -> &'static str {
        match self {
            Arithmetic::Single => SINGLE,
            Arithmetic::FloatFloat => FLOAT_FLOAT,
        }
    }

    /// Edge of the output block one invocation sums.
    const fn block(self) -> usize {
        match self {
            Arithmetic::Single => 8,
            Arithmetic::FloatFloat => 4,
        }
    }
}

/// One compilation of the core: the output tile of a workgroup, how deep its operands are
/// staged, and the arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tile {
    pub(super) rows: usize,
    pub(super) columns: usize,
    depth: usize,
    arithmetic: Arithmetic,
}

impl Tile {
    /// Invocations of one workgroup.
    pub(super) const fn invocations(self) -> u32 {
        let block = self.arithmetic.block();
        (self.rows / block * (self.columns / block)) as u32
    }

    /// Workgroup bytes of the two staging buffers (f32).
    pub(super) const fn staging_bytes(self) -> u32 {
        (2 * self.depth * (self.rows + self.columns) * 4) as u32
    }

    fn fits(self, limits: &wgpu::Limits) -> bool {
        self.invocations() <= limits.max_compute_invocations_per_workgroup
            && self.invocations() <= limits.max_compute_workgroup_size_x
            && self.staging_bytes() <= limits.max_compute_workgroup_storage_size
    }

    /// The module of `file` (which defines `products`) on this tile.
    pub(super) fn compose(self, file: &str, products: &[&str]) -> String {
        let halves = |source: &'static str| {
            source
                .split_once(INSTANTIATE)
                .expect("the tiled core and its arithmetics have their @instantiate line")
        };
        let (core_shared, core_per_product) = halves(CORE);
        let (arithmetic_shared, arithmetic_per_product) = halves(self.arithmetic.source());
        let mut module = format!(
            "const TILE_ROWS: u32 = {}u;\nconst TILE_COLUMNS: u32 = {}u;\nconst DEPTH: u32 = {}u;\n",
            self.rows, self.columns, self.depth
        );
        if self.arithmetic == Arithmetic::FloatFloat {
            module.push_str(super::reductions::FLOAT_FLOAT);
            module.push('\n');
        }
        module.push_str(core_shared);
        module.push('\n');
        module.push_str(arithmetic_shared);
        module.push('\n');
        for product in products {
            let name = format!("{product}_");
            module.push_str(&core_per_product.replace("PRODUCT_", &name));
            module.push_str(&arithmetic_per_product.replace("PRODUCT_", &name));
        }
        module.push_str(file);
        module
    }
}

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

    /// The f32 tile of this shape, staged 8 deep.
    pub(super) const fn tile(self) -> Tile {
        Tile {
            rows: self.rows(),
            columns: self.columns(),
            depth: 8,
            arithmetic: Arithmetic::Single,
        }
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
        self.tile().fits(limits)
    }
}

/// Tiles of the float-float ridge products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatFloatTile {
    /// 64×64 outputs staged 16 deep (16 KiB of workgroup memory, 256 invocations): the Gram
    /// product, whose output is square and whose sum is long.
    Gram,
    /// 64×64 staged 8 deep (8 KiB): the Gram product where the adapter has less than 16 KiB of
    /// workgroup memory (downlevel adapters offer 16 352 bytes).
    ShallowGram,
    /// 128 rows × 8 columns staged 8 deep (64 invocations): the readout, whose right operand
    /// is 2 × outputs wide (a handful of colour channels) and whose rows are many.
    Readout,
}

/// The Gram tiles, deepest first.
pub const GRAM_TILES: [FloatFloatTile; 2] = [FloatFloatTile::Gram, FloatFloatTile::ShallowGram];

impl FloatFloatTile {
    pub(super) const fn tile(self) -> Tile {
        let (rows, columns, depth) = match self {
            FloatFloatTile::Gram => (64, 64, 16),
            FloatFloatTile::ShallowGram => (64, 64, 8),
            FloatFloatTile::Readout => (128, 8, 8),
        };
        Tile {
            rows,
            columns,
            depth,
            arithmetic: Arithmetic::FloatFloat,
        }
    }

    /// The deepest Gram tile the adapter's limits hold.
    pub(super) fn gram_for(limits: &wgpu::Limits) -> Self {
        GRAM_TILES
            .into_iter()
            .find(|tile| tile.tile().fits(limits))
            .unwrap_or(FloatFloatTile::ShallowGram)
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
        let kernel = |shape: TileShape| {
            super::Kernel::tiled(label, file, products, entry_point, storage, shape.tile())
        };
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
