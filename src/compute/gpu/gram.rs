//! f64-accurate products for ridge regression (`shaders/gram.wgsl`): the Gram matrix
//! `[A₁ … A_k]ᵀ·B` and the readout `[A₁ … A_k]·W`, both in float-float arithmetic.

use super::tiled::{FloatFloatTile, GRAM_TILES};
use super::{Access, GpuBackend, Kernel, OPAQUE_ZERO, Tensor, buffer};

const GRAM: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/gram.wgsl"));
const READOUT: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/readout.wgsl"));

/// The files on the float-float tiled core, with the product each defines and the tiles it is
/// built for.
pub(super) const FILES: &[(&str, &str, &[&str], &[FloatFloatTile])] = &[
    ("gram.wgsl", GRAM, &["gram"], &GRAM_TILES),
    (
        "readout.wgsl",
        READOUT,
        &["readout"],
        &[FloatFloatTile::Readout],
    ),
];

/// Workgroups a Gram dispatch aims for: long thin operands give few output tiles, so the sum
/// over rows is split until the device has this much parallel work.
const GRAM_TARGET_WORKGROUPS: usize = 1024;
/// Fewest rows one split sums, so splitting never dominates the work.
const GRAM_MIN_SPLIT_ROWS: usize = 512;

pub(super) struct Kernels {
    /// By [`GRAM_TILES`] order.
    gram: [Kernel; 2],
    readout: Kernel,
}

impl Kernels {
    pub(super) fn new() -> Self {
        let gram = |tile: FloatFloatTile| {
            Kernel::tiled(
                "gram",
                GRAM,
                &["gram"],
                "gram",
                &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)],
                tile.tile(),
            )
        };
        Kernels {
            gram: GRAM_TILES.map(gram),
            readout: Kernel::tiled(
                "readout",
                READOUT,
                &["readout"],
                "readout",
                &[
                    (1, Access::Read),
                    (2, Access::Read),
                    (3, Access::ReadWrite),
                    (4, Access::ReadWrite),
                ],
                FloatFloatTile::Readout.tile(),
            ),
        }
    }

    fn gram(&self, tile: FloatFloatTile) -> &Kernel {
        let index = GRAM_TILES
            .iter()
            .position(|&each| each == tile)
            .expect("the Gram kernel is built for every Gram tile");
        &self.gram[index]
    }
}

pub(super) fn gram(gpu: &GpuBackend, blocks: &[&Tensor], b: &Tensor) -> Vec<f64> {
    let (rows, q) = b.shape();
    let total: usize = blocks.iter().map(|block| block.cols()).sum();
    for block in blocks {
        assert_eq!(block.rows(), rows, "gram: every block must have B's rows");
    }
    let mut result = vec![0.0f64; total * q];
    if rows == 0 || total == 0 || q == 0 {
        return result;
    }
    let tile = gpu.gram_tile;
    let edge = tile.tile().rows;
    // Split the row sum so that the output tiles times the splits fill the device.
    let tiles: usize = blocks
        .iter()
        .map(|block| block.cols().div_ceil(edge) * q.div_ceil(edge))
        .sum();
    let wanted = GRAM_TARGET_WORKGROUPS.div_ceil(tiles);
    let splits = wanted.min(rows.div_ceil(GRAM_MIN_SPLIT_ROWS)).max(1);
    let rows_per_split = rows.div_ceil(splits).next_multiple_of(16);
    let splits = rows.div_ceil(rows_per_split);

    let partials = gpu.scratch_buffer("gram partials", (splits * total * q * 8) as u64);
    let mut row_offset = 0;
    for block in blocks {
        let p = block.cols();
        if p == 0 {
            continue;
        }
        let symmetric = std::ptr::eq(*block, b);
        gpu.dispatch(
            gpu.kernels.gram.gram(tile),
            &[
                rows as u32,
                p as u32,
                q as u32,
                rows_per_split as u32,
                total as u32,
                row_offset as u32,
                u32::from(symmetric),
                OPAQUE_ZERO,
            ],
            &[buffer(block), buffer(b), &partials],
            [
                q.div_ceil(edge) as u32,
                p.div_ceil(edge) as u32,
                splits as u32,
            ],
        );
        row_offset += p;
    }
    let pairs: Vec<[f32; 2]> = gpu.read_back(&partials, splits * total * q);
    for split in pairs.chunks_exact(total * q) {
        for (sum, pair) in result.iter_mut().zip(split) {
            *sum += f64::from(pair[0]) + f64::from(pair[1]);
        }
    }
    // Symmetric blocks computed only tiles on and above the diagonal: mirror the rest.
    let mut row_offset = 0;
    for block in blocks {
        let p = block.cols();
        if std::ptr::eq(*block, b) {
            for i in 0..p {
                for j in 0..i {
                    result[(row_offset + i) * q + j] = result[(row_offset + j) * q + i];
                }
            }
        }
        row_offset += p;
    }
    result
}

pub(super) fn readout(gpu: &GpuBackend, blocks: &[&Tensor], weights: &[f64], out: &mut Tensor) {
    let (rows, outs) = out.shape();
    let total: usize = blocks.iter().map(|block| block.cols()).sum();
    assert_eq!(
        weights.len(),
        total * outs,
        "readout: W must be (Σ cols)×cols(out)"
    );
    for block in blocks {
        assert_eq!(
            block.rows(),
            rows,
            "readout: every block must have out's rows"
        );
    }
    if out.is_empty() {
        return;
    }
    // W = hi + lo exactly enough: lo carries the 29 bits f32 rounding drops from hi. The two
    // parts of weight (k, j) are columns 2j and 2j + 1 of row k of the right operand.
    let parts: Vec<f32> = weights
        .iter()
        .flat_map(|&weight| {
            let hi = weight as f32;
            [hi, (weight - f64::from(hi)) as f32]
        })
        .collect();
    let weight_parts = gpu.scratch_buffer_from("readout weights (hi, lo)", &parts);
    let used: Vec<(usize, &Tensor)> = {
        let mut weight_row = 0;
        let mut used = Vec::new();
        for block in blocks {
            if block.cols() > 0 {
                used.push((weight_row, *block));
            }
            weight_row += block.cols();
        }
        used
    };
    if used.is_empty() {
        let mut pending = gpu.pending.lock().unwrap();
        gpu.encoder(&mut pending).clear_buffer(buffer(out), 0, None);
        return;
    }
    // The hi/lo sum carried between blocks; a single block needs none.
    let carry = if used.len() > 1 {
        gpu.scratch_buffer("readout carry", (rows * outs * 8) as u64)
    } else {
        gpu.scratch_buffer("readout carry (unused)", 8)
    };
    let tile = FloatFloatTile::Readout.tile();
    let grid = gpu.tile_grid((2 * outs).div_ceil(tile.columns), rows.div_ceil(tile.rows));
    for (index, &(weight_row, block)) in used.iter().enumerate() {
        gpu.dispatch(
            &gpu.kernels.gram.readout,
            &[
                rows as u32,
                block.cols() as u32,
                outs as u32,
                weight_row as u32,
                u32::from(index == 0),
                u32::from(index + 1 == used.len()),
                OPAQUE_ZERO,
            ],
            &[buffer(block), &weight_parts, &carry, buffer(out)],
            grid,
        );
    }
}
