// Fused reservoir update: out = tanh(input·W_in + state·W_hh + bias).
//
// Both products accumulate into the same registers of a 64×64 output tile, so the
// pre-activation never goes to memory. 256 invocations each own a 4×4 block of the tile
// (rows local.y + 16i, columns local.x + 16j: strided so shared-memory reads are spread out),
// and operands stream through workgroup memory 16 deep.

struct Params {
    rows: u32,      // N, rows of input, state and out
    inputs: u32,    // columns of input = rows of W_in
    hidden: u32,    // columns of state, W_in, W_hh, bias and out
    has_state: u32, // 0: the zero state, the recurrent product is skipped
}

// Sizes of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// N×inputs driving input u.
@group(0) @binding(1) var<storage, read> input: array<f32>;
// inputs×hidden input weights W_in.
@group(0) @binding(2) var<storage, read> input_weights: array<f32>;
// N×hidden previous state h (bound to `input` as a placeholder when has_state = 0).
@group(0) @binding(3) var<storage, read> state: array<f32>;
// hidden×hidden recurrent weights W_hh.
@group(0) @binding(4) var<storage, read> recurrent_weights: array<f32>;
// 1×hidden bias.
@group(0) @binding(5) var<storage, read> bias: array<f32>;
// N×hidden new state.
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

const TILE: u32 = 64u;
const DEPTH: u32 = 16u;

// Left operand slice, stored [k][row] so each invocation reads its rows with one stride.
var<workgroup> tile_left: array<f32, 1024>;
// Right operand slice, stored [k][column].
var<workgroup> tile_right: array<f32, 1024>;

// Adds the product of the two staged slices to this invocation's 4×4 accumulator block.
fn multiply_staged(local: vec3<u32>, acc: ptr<function, array<f32, 16>>) {
    for (var k = 0u; k < DEPTH; k++) {
        var left: array<f32, 4>;
        var right: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
            left[i] = tile_left[k * TILE + local.y + 16u * i];
            right[i] = tile_right[k * TILE + local.x + 16u * i];
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                (*acc)[i * 4u + j] += left[i] * right[j];
            }
        }
    }
}

// Stages the slice [k0, k0+16) of the N×depth row-major `left` (input when which = 0, state
// otherwise) and of the depth×hidden row-major weights; out-of-range elements are zero.
fn stage(which: u32, flat: u32, row0: u32, column0: u32, k0: u32, depth: u32) {
    for (var e = 0u; e < 4u; e++) {
        let slot = flat + 256u * e;
        // Left: consecutive invocations walk along k, the contiguous direction.
        let lr = slot / DEPTH;
        let lk = slot % DEPTH;
        var left_value = 0.0;
        if row0 + lr < params.rows && k0 + lk < depth {
            let at = (row0 + lr) * depth + k0 + lk;
            if which == 0u {
                left_value = input[at];
            } else {
                left_value = state[at];
            }
        }
        tile_left[lk * TILE + lr] = left_value;
        // Right: consecutive invocations walk along columns, the contiguous direction.
        let rk = slot / TILE;
        let rc = slot % TILE;
        var right_value = 0.0;
        if k0 + rk < depth && column0 + rc < params.hidden {
            let at = (k0 + rk) * params.hidden + column0 + rc;
            if which == 0u {
                right_value = input_weights[at];
            } else {
                right_value = recurrent_weights[at];
            }
        }
        tile_right[rk * TILE + rc] = right_value;
    }
}

@compute @workgroup_size(16, 16)
fn step(
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    // Row tiles may be folded into z when there are more than the per-dimension limit.
    let row0 = (group.y + group.z * groups.y) * TILE;
    let column0 = group.x * TILE;
    if row0 >= params.rows {
        return;
    }
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < params.inputs; k0 += DEPTH) {
        stage(0u, flat, row0, column0, k0, params.inputs);
        workgroupBarrier();
        multiply_staged(local, &acc);
        workgroupBarrier();
    }
    if params.has_state != 0u {
        for (var k0 = 0u; k0 < params.hidden; k0 += DEPTH) {
            stage(1u, flat, row0, column0, k0, params.hidden);
            workgroupBarrier();
            multiply_staged(local, &acc);
            workgroupBarrier();
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + local.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let column = column0 + local.x + 16u * j;
            if row < params.rows && column < params.hidden {
                // tanh(±15) is ±1 in f32; clamping keeps exp-based tanh implementations finite.
                let z = clamp(acc[i * 4u + j] + bias[column], -15.0, 15.0);
                out[row * params.hidden + column] = tanh(z);
            }
        }
    }
}
