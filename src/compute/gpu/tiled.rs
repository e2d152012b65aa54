//! The register-tiled product core (`shaders/tiled_product.wgsl`), its stagings and arithmetics,
//! and the tiles it is compiled for.
//!
//! A tiled shader module is composed at pipeline-build time: a tile header, the shared parts of
//! the core, of its staging and of its arithmetic (`tiled_staging.wgsl` with `tiled_single.wgsl`
//! for f32 sums or `tiled_float_float.wgsl` for the f64-accurate ridge products;
//! `tiled_cooperative.wgsl` alone for f16 matrix-unit sums), each once per product the file
//! defines (their `PRODUCT_` names renamed), then the file. The f32 products' tile is a
//! per-dispatch choice made by the backend from the adapter's limits and the product's output
//! width (see [`TileShape::for_columns`]); the float-float ones have tiles of their own
//! ([`FloatFloatTile`]); the cooperative tile is the adapter's ([`cooperative_tile`]).

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
const STAGING: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/tiled_staging.wgsl"
));
const COOPERATIVE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/tiled_cooperative.wgsl"
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
    /// f16 operands summed into f32 by the adapter's cooperative matrices, `fragment` on a
    /// side, by subgroups of `subgroup` invocations, each owning [`COOPERATIVE_FRAGMENTS`].
    Cooperative { fragment: usize, subgroup: usize },
}

/// Fragments one subgroup sums in the cooperative arithmetic, down and across: 4×2 reuses each
/// staged left fragment twice and each right one four times.
pub(super) const COOPERATIVE_FRAGMENTS: (usize, usize) = (4, 2);

impl Arithmetic {
    const fn source(self) -> &'static str {
        match self {
            Arithmetic::Single => SINGLE,
            Arithmetic::FloatFloat => FLOAT_FLOAT,
            Arithmetic::Cooperative { .. } => COOPERATIVE,
        }
    }

    /// How a slice of the operands is held in workgroup memory: the cooperative file stages
    /// its own (f16) and so has none.
    const fn staging(self) -> Option<&'static str> {
        match self {
            Arithmetic::Single | Arithmetic::FloatFloat => Some(STAGING),
            Arithmetic::Cooperative { .. } => None,
        }
    }

    /// Rows and columns of the output one invocation, or one subgroup of `invocations`,
    /// sums.
    const fn block(self) -> (usize, usize, usize) {
        match self {
            Arithmetic::Single => (8, 8, 1),
            Arithmetic::FloatFloat => (4, 4, 1),
            Arithmetic::Cooperative { fragment, subgroup } => (
                fragment * COOPERATIVE_FRAGMENTS.0,
                fragment * COOPERATIVE_FRAGMENTS.1,
                subgroup,
            ),
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
        let (rows, columns, invocations) = self.arithmetic.block();
        (self.rows / rows * (self.columns / columns) * invocations) as u32
    }

    /// Workgroup bytes of the two staging buffers (f32, or f16 plus one spilled f32 fragment
    /// per subgroup for the cooperative arithmetic).
    pub(super) const fn staging_bytes(self) -> u32 {
        let staged = 2 * self.depth * (self.rows + self.columns);
        match self.arithmetic {
            Arithmetic::Cooperative { fragment, subgroup } => {
                let subgroups = self.invocations() as usize / subgroup;
                (staged * 2 + subgroups * fragment * fragment * 4) as u32
            }
            _ => (staged * 4) as u32,
        }
    }

    /// The fragment edge of a cooperative tile (0 for the others).
    pub(super) const fn fragment(self) -> usize {
        match self.arithmetic {
            Arithmetic::Cooperative { fragment, .. } => fragment,
            _ => 0,
        }
    }

    fn fits(self, limits: &wgpu::Limits) -> bool {
        self.invocations() <= limits.max_compute_invocations_per_workgroup
            && self.invocations() <= limits.max_compute_workgroup_size_x
            && self.staging_bytes() <= limits.max_compute_workgroup_storage_size
    }

    /// The module of `file` (which defines `products`) on this tile; a cooperative tile's
    /// starts with its `enable` directives.
    pub(super) fn compose(self, file: &str, products: &[&str]) -> String {
        let halves = |source: &'static str| {
            source.split_once(INSTANTIATE).expect(
                "the tiled core, its staging and its arithmetics have their @instantiate line",
            )
        };
        let parts: Vec<(&str, &str)> = [
            Some(CORE),
            self.arithmetic.staging(),
            Some(self.arithmetic.source()),
        ]
        .into_iter()
        .flatten()
        .map(halves)
        .collect();
        let mut module = String::new();
        if let Arithmetic::Cooperative { fragment, subgroup } = self.arithmetic {
            let (fragment_rows, fragment_columns) = COOPERATIVE_FRAGMENTS;
            module.push_str(&format!(
                "enable f16;\nenable wgpu_cooperative_matrix;\n\
                 const FRAGMENT: u32 = {fragment}u;\n\
                 const FRAGMENT_ROWS: u32 = {fragment_rows}u;\n\
                 const FRAGMENT_COLUMNS: u32 = {fragment_columns}u;\n\
                 const SUBGROUP_SIZE: u32 = {subgroup}u;\n\
                 alias LeftFragment = coop_mat{fragment}x{fragment}<f16, A>;\n\
                 alias RightFragment = coop_mat{fragment}x{fragment}<f16, B>;\n\
                 alias SumFragment = coop_mat{fragment}x{fragment}<f32, C>;\n"
            ));
        }
        module.push_str(&format!(
            "const TILE_ROWS: u32 = {}u;\nconst TILE_COLUMNS: u32 = {}u;\nconst DEPTH: u32 = {}u;\n\
             const INVOCATIONS: u32 = {}u;\n",
            self.rows,
            self.columns,
            self.depth,
            self.invocations()
        ));
        if self.arithmetic == Arithmetic::FloatFloat {
            module.push_str(super::reductions::FLOAT_FLOAT);
            module.push('\n');
        }
        for (shared, _) in &parts {
            module.push_str(shared);
            module.push('\n');
        }
        for product in products {
            let name = format!("{product}_");
            for (_, per_product) in &parts {
                module.push_str(&per_product.replace("PRODUCT_", &name));
            }
        }
        module.push_str(file);
        module
    }
}

/// The cooperative tile for an adapter that offers f16 × f16 → f32 cooperative matrices of a
/// size WGSL has (16, else 8) and one subgroup size, when the device was granted the features
/// and the tile fits its limits: 128×128 outputs staged 16 deep.
pub(super) fn cooperative_tile(
    adapter: &wgpu::Adapter,
    features: wgpu::Features,
    limits: &wgpu::Limits,
) -> Option<Tile> {
    if !features.contains(COOPERATIVE_FEATURES) {
        return None;
    }
    let info = adapter.get_info();
    if info.subgroup_min_size != info.subgroup_max_size {
        return None;
    }
    let offered = adapter.cooperative_matrix_properties();
    [16, 8]
        .into_iter()
        .find(|&size| {
            offered.iter().any(|p| {
                (p.m_size, p.n_size, p.k_size) == (size, size, size)
                    && p.ab_type == wgpu::CooperativeScalarType::F16
                    && p.cr_type == wgpu::CooperativeScalarType::F32
            })
        })
        .map(|fragment| Tile {
            rows: 128,
            columns: 128,
            depth: 16,
            arithmetic: Arithmetic::Cooperative {
                fragment: fragment as usize,
                subgroup: info.subgroup_max_size as usize,
            },
        })
        .filter(|tile| tile.fits(limits))
}

/// The features the cooperative arithmetic needs.
pub(super) const COOPERATIVE_FEATURES: wgpu::Features =
    wgpu::Features::SHADER_F16.union(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);

/// Cooperative tiles for every fragment size and a common subgroup size of each, for
/// validating their modules on machines that cannot run them.
pub(super) fn cooperative_tiles_to_validate() -> [Tile; 2] {
    [(16, 32), (8, 8)].map(|(fragment, subgroup)| Tile {
        rows: 128,
        columns: 128,
        depth: 16,
        arithmetic: Arithmetic::Cooperative { fragment, subgroup },
    })
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

/// An entry point of a tiled file, one lazily built kernel per shape, and one on the adapter's
/// cooperative tile where it has one.
pub(super) struct TiledKernel {
    by_shape: [super::Kernel; 3],
    cooperative: Option<super::Kernel>,
}

impl TiledKernel {
    pub(super) fn new(
        label: &'static str,
        file: &'static str,
        products: &'static [&'static str],
        entry_point: &'static str,
        storage: &'static [(u32, super::Access)],
        cooperative: Option<Tile>,
    ) -> Self {
        let kernel =
            |tile: Tile| super::Kernel::tiled(label, file, products, entry_point, storage, tile);
        TiledKernel {
            by_shape: SHAPES.map(|shape| kernel(shape.tile())),
            cooperative: cooperative.map(kernel),
        }
    }

    /// Every kernel composed with the reduction core `core`.
    pub(super) fn with_sum_core(self, core: super::reductions::SumCore) -> Self {
        TiledKernel {
            by_shape: self.by_shape.map(|kernel| kernel.with_sum_core(core)),
            cooperative: self.cooperative.map(|kernel| kernel.with_sum_core(core)),
        }
    }

    pub(super) fn shaped(&self, shape: TileShape) -> &super::Kernel {
        &self.by_shape[shape.index()]
    }

    /// The kernel for `tile`: a shape's, or the cooperative one.
    pub(super) fn on(&self, tile: ProductTile) -> &super::Kernel {
        match tile {
            ProductTile::Shape(shape) => self.shaped(shape),
            ProductTile::Cooperative(_) => self
                .cooperative
                .as_ref()
                .expect("a cooperative tile is only chosen where its kernels were built"),
        }
    }
}

/// The tile a product of the dense layers runs on: an f32 shape or the cooperative tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProductTile {
    Shape(TileShape),
    Cooperative(Tile),
}

impl ProductTile {
    pub(super) const fn rows(self) -> usize {
        match self {
            ProductTile::Shape(shape) => shape.rows(),
            ProductTile::Cooperative(tile) => tile.rows,
        }
    }

    pub(super) const fn columns(self) -> usize {
        match self {
            ProductTile::Shape(shape) => shape.columns(),
            ProductTile::Cooperative(tile) => tile.columns,
        }
    }
}
