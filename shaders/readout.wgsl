// The ridge readout out = [H₁ … H_k]·W with f64 weights, f64-accurate before its final rounding
// to f32: an instance of the register-tiled core in float-float arithmetic (tiled_product.wgsl,
// tiled_float_float.wgsl), one dispatch per block H_i, carrying the (hi, lo) sum between blocks.
//
// The host splits W into f32 parts hi + lo and interleaves them as the columns of the right
// operand (column 2j is hi of output j, 2j + 1 its lo), so one product sums H·W_hi and H·W_lo
// side by side and the epilogue adds each pair: ridge weights are large, of both signs, and
// cancel, so the digits f32 drops from them matter.

struct Params {
    rows: u32,          // N, rows of H and out
    block_columns: u32, // columns of this block of H
    out_columns: u32,   // columns of W and out
    weight_row: u32,    // first row of W that multiplies this block
    first: u32,         // 1: start from zero instead of the carried partial sum
    last: u32,          // 1: round to f32 into out instead of carrying hi/lo
    opaque_zero: u32,   // always 0 (see float_float.wgsl's `opaque`)
}

// Sizes of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// N×block_columns block of H.
@group(0) @binding(1) var<storage, read> hidden: array<f32>;
// (Σ block columns) × 2·out_columns: the f32 parts of W, hi and lo interleaved by column.
@group(0) @binding(2) var<storage, read> weights: array<f32>;
// N×out_columns (hi, lo) sums carried from one block to the next.
@group(0) @binding(3) var<storage, read_write> carry: array<vec2<f32>>;
// N×out_columns result, rounded to f32 after the last block.
@group(0) @binding(4) var<storage, read_write> readout_out: array<f32>;

const readout_left_along_k: bool = true;
const readout_right_along_k: bool = false;

fn readout_left_value(row: u32, k: u32) -> f32 {
    if row < params.rows && k < params.block_columns {
        return hidden[row * params.block_columns + k];
    }
    return 0.0;
}

fn readout_right_value(k: u32, column: u32) -> f32 {
    let columns = 2u * params.out_columns;
    if k < params.block_columns && column < columns {
        return weights[(params.weight_row + k) * columns + column];
    }
    return 0.0;
}

// `column` is a multiple of 4: the quad holds the (hi, lo) parts of outputs column/2 and
// column/2 + 1.
fn readout_write_quad(row: u32, column: u32, sums: FloatFloatQuad) {
    if row >= params.rows {
        return;
    }
    for (var pair = 0u; pair < 2u; pair++) {
        let output = column / 2u + pair;
        if output < params.out_columns {
            let from_hi = vec2(sums.hi[2u * pair], sums.lo[2u * pair]);
            let from_lo = vec2(sums.hi[2u * pair + 1u], sums.lo[2u * pair + 1u]);
            var sum = add_float_float(from_hi, from_lo);
            let at = row * params.out_columns + output;
            if params.first == 0u {
                sum = add_float_float(sum, carry[at]);
            }
            if params.last != 0u {
                readout_out[at] = sum.x + sum.y;
            } else {
                carry[at] = sum;
            }
        }
    }
}

@compute @workgroup_size(INVOCATIONS)
fn readout(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let row0 = tile_row0(group, groups);
    let column0 = group.x * TILE_COLUMNS;
    if row0 >= params.rows {
        return;
    }
    readout_multiply_tile(t, row0, column0, 0u, params.block_columns);
    readout_write_tile(t, row0, column0);
}
