// The Gram product of the ridge readouts, C = Aᵀ·B summed over the rows, f64-accurate: an
// instance of the register-tiled core in float-float arithmetic (tiled_product.wgsl,
// tiled_float_float.wgsl), whose Veltkamp products and TwoSums keep ~1e-13 relative accuracy
// over N terms where f32 keeps ~1e-7 — the ridge systems have condition numbers up to 1e13.
//
// Long, thin operands give few output tiles, so the row sum is split along z until the device
// is full; each split writes its own (hi, lo) partial and the host adds them in f64. For A's own
// Gram (A is B) the tiles below the diagonal are skipped and mirrored by the host.

struct Params {
    rows: u32,           // N, rows of A and B
    left_columns: u32,   // p, columns of this block A
    right_columns: u32,  // q, columns of B
    rows_per_split: u32, // rows summed by one z-slice
    total_rows: u32,     // Σ p over all blocks: rows of the full result
    row_offset: u32,     // first result row of this block
    symmetric: u32,      // 1 when A is B: tiles below the diagonal are skipped
    opaque_zero: u32,    // always 0 (see float_float.wgsl's `opaque`)
}

// Sizes of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// N×p block A.
@group(0) @binding(1) var<storage, read> left: array<f32>;
// N×q right factor B.
@group(0) @binding(2) var<storage, read> right: array<f32>;
// splits × total_rows × q partial products as (hi, lo).
@group(0) @binding(3) var<storage, read_write> partial_products: array<vec2<f32>>;

// The split of the row sum this workgroup computes.
var<private> split: u32;

// Aᵀ[row][k] = A[k][row] and B[k][column]: both stored with the summed index as their row.
const gram_left_along_k: bool = false;
const gram_right_along_k: bool = false;

fn gram_left_value(row: u32, k: u32) -> f32 {
    if row < params.left_columns && k < params.rows {
        return left[k * params.left_columns + row];
    }
    return 0.0;
}

fn gram_right_value(k: u32, column: u32) -> f32 {
    if k < params.rows && column < params.right_columns {
        return right[k * params.right_columns + column];
    }
    return 0.0;
}

fn gram_write_quad(row: u32, column: u32, sums: FloatFloatQuad) {
    let q = params.right_columns;
    if row >= params.left_columns {
        return;
    }
    let first = (split * params.total_rows + params.row_offset + row) * q;
    for (var c = 0u; c < 4u; c++) {
        if column + c < q {
            partial_products[first + column + c] = vec2(sums.hi[c], sums.lo[c]);
        }
    }
}

// The tile (group.y, group.x) of split group.z. Tiles are square, so the symmetric case skips
// whole workgroups below the diagonal.
@compute @workgroup_size(INVOCATIONS)
fn gram(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) group: vec3<u32>,
) {
    if params.symmetric != 0u && group.y > group.x {
        return;
    }
    let row0 = group.y * TILE_ROWS;
    let column0 = group.x * TILE_COLUMNS;
    let k_begin = group.z * params.rows_per_split;
    let k_end = min(k_begin + params.rows_per_split, params.rows);
    split = group.z;
    gram_multiply_tile(t, row0, column0, k_begin, k_end);
    gram_write_tile(t, row0, column0);
}
