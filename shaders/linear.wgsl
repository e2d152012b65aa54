// Dense layers: the forward product with bias and activation fused into its epilogue, and the
// backward products. dz = dy ⊙ act'(y) is never stored: the backward products compute it while
// staging their operands, which saves a full N×outputs buffer and a pass over it.
//
// Products use 64×64 output tiles, 256 invocations each owning a 4×4 block (rows local.y + 16i,
// columns local.x + 16j) and operands staged 16 deep in workgroup memory.

struct Params {
    rows: u32,       // N, rows of x, y and dy
    inputs: u32,     // columns of x = rows of W
    outputs: u32,    // columns of W, b, y and dy
    activation: u32, // Activation::index(): 0 identity, 1 relu, 2 tanh, 3 sigmoid
    rows_per_split: u32, // backward_weights: rows summed by one z-slice
    splits: u32,         // backward_weights / sum_splits: number of z-slices
}

// Sizes and activation of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// N×inputs layer input.
@group(0) @binding(1) var<storage, read> x: array<f32>;
// inputs×outputs weights W.
@group(0) @binding(2) var<storage, read> weights: array<f32>;
// 1×outputs bias (forward only).
@group(0) @binding(3) var<storage, read> bias: array<f32>;
// N×outputs activated output (forward writes it).
@group(0) @binding(4) var<storage, read_write> y_out: array<f32>;
// N×outputs activated output kept from the forward pass (backward reads it).
@group(0) @binding(5) var<storage, read> y: array<f32>;
// N×outputs gradient of the loss with respect to y.
@group(0) @binding(6) var<storage, read> dy: array<f32>;
// splits × inputs×outputs partial weight gradients xᵀ·dz (the gradient itself when splits = 1).
@group(0) @binding(7) var<storage, read_write> d_weights: array<f32>;
// N×inputs input gradient dz·Wᵀ.
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;
// 1×outputs bias gradient Σ_rows dz.
@group(0) @binding(9) var<storage, read_write> d_bias: array<f32>;
// splits × inputs×outputs partial weight gradients, read by sum_splits.
@group(0) @binding(10) var<storage, read> d_weights_split: array<f32>;
// inputs×outputs weight gradient, written by sum_splits.
@group(0) @binding(11) var<storage, read_write> d_weights_sum: array<f32>;

const TILE: u32 = 64u;
const DEPTH: u32 = 16u;

// Left operand slice, stored [k][row].
var<workgroup> tile_left: array<f32, 1024>;
// Right operand slice, stored [k][column].
var<workgroup> tile_right: array<f32, 1024>;
// Partial sums of the bias-gradient reduction.
var<workgroup> partial: array<f32, 256>;

fn activate(z: f32) -> f32 {
    switch params.activation {
        case 1u: {
            return max(z, 0.0);
        }
        case 2u: {
            // tanh(±15) is ±1 in f32; clamping keeps exp-based tanh implementations finite.
            return tanh(clamp(z, -15.0, 15.0));
        }
        case 3u: {
            return 1.0 / (1.0 + exp(-z));
        }
        default: {
            return z;
        }
    }
}

// act'(z) expressed through the output y = act(z).
fn derivative_from_output(value: f32) -> f32 {
    switch params.activation {
        case 1u: {
            return select(0.0, 1.0, value > 0.0);
        }
        case 2u: {
            return 1.0 - value * value;
        }
        case 3u: {
            return value * (1.0 - value);
        }
        default: {
            return 1.0;
        }
    }
}

// dz at a flat index of the N×outputs matrices.
fn dz(at: u32) -> f32 {
    return dy[at] * derivative_from_output(y[at]);
}

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

// Index of the first row of this workgroup's tile; row tiles beyond the per-dimension dispatch
// limit are folded into z.
fn tile_row0(group: vec3<u32>, groups: vec3<u32>) -> u32 {
    return (group.y + group.z * groups.y) * TILE;
}

// y = act(x·W + b).
@compute @workgroup_size(16, 16)
fn forward(
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let row0 = tile_row0(group, groups);
    let column0 = group.x * TILE;
    if row0 >= params.rows {
        return;
    }
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < params.inputs; k0 += DEPTH) {
        for (var e = 0u; e < 4u; e++) {
            let slot = flat + 256u * e;
            // x[row][k]: consecutive invocations walk along k (contiguous).
            let lr = slot / DEPTH;
            let lk = slot % DEPTH;
            var left_value = 0.0;
            if row0 + lr < params.rows && k0 + lk < params.inputs {
                left_value = x[(row0 + lr) * params.inputs + k0 + lk];
            }
            tile_left[lk * TILE + lr] = left_value;
            // W[k][column]: consecutive invocations walk along columns (contiguous).
            let rk = slot / TILE;
            let rc = slot % TILE;
            var right_value = 0.0;
            if k0 + rk < params.inputs && column0 + rc < params.outputs {
                right_value = weights[(k0 + rk) * params.outputs + column0 + rc];
            }
            tile_right[rk * TILE + rc] = right_value;
        }
        workgroupBarrier();
        multiply_staged(local, &acc);
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + local.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let column = column0 + local.x + 16u * j;
            if row < params.rows && column < params.outputs {
                y_out[row * params.outputs + column] = activate(acc[i * 4u + j] + bias[column]);
            }
        }
    }
}

// dW = xᵀ·dz: an inputs×outputs result summed over the N rows. Few output tiles and a long
// sum, so the rows are split over z; slice z writes its partial to plane z of `d_weights` and
// `sum_splits` adds the planes.
@compute @workgroup_size(16, 16)
fn backward_weights(
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
    @builtin(workgroup_id) group: vec3<u32>,
) {
    let row0 = group.y * TILE;
    let column0 = group.x * TILE;
    if row0 >= params.inputs {
        return;
    }
    let k_begin = group.z * params.rows_per_split;
    let k_end = min(k_begin + params.rows_per_split, params.rows);
    let plane = group.z * params.inputs * params.outputs;
    var acc: array<f32, 16>;
    for (var k0 = k_begin; k0 < k_end; k0 += DEPTH) {
        for (var e = 0u; e < 4u; e++) {
            let slot = flat + 256u * e;
            // Both operands are walked along their contiguous columns.
            let sk = slot / TILE;
            let sc = slot % TILE;
            var left_value = 0.0;
            if k0 + sk < k_end && row0 + sc < params.inputs {
                left_value = x[(k0 + sk) * params.inputs + row0 + sc];
            }
            tile_left[sk * TILE + sc] = left_value;
            var right_value = 0.0;
            if k0 + sk < k_end && column0 + sc < params.outputs {
                right_value = dz((k0 + sk) * params.outputs + column0 + sc);
            }
            tile_right[sk * TILE + sc] = right_value;
        }
        workgroupBarrier();
        multiply_staged(local, &acc);
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + local.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let column = column0 + local.x + 16u * j;
            if row < params.inputs && column < params.outputs {
                d_weights[plane + row * params.outputs + column] = acc[i * 4u + j];
            }
        }
    }
}

// dx = dz·Wᵀ: an N×inputs result summed over the outputs.
@compute @workgroup_size(16, 16)
fn backward_input(
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let row0 = tile_row0(group, groups);
    let column0 = group.x * TILE;
    if row0 >= params.rows {
        return;
    }
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < params.outputs; k0 += DEPTH) {
        for (var e = 0u; e < 4u; e++) {
            let slot = flat + 256u * e;
            // dz[row][k] and W[column][k]: both walked along k (contiguous).
            let sr = slot / DEPTH;
            let sk = slot % DEPTH;
            var left_value = 0.0;
            if row0 + sr < params.rows && k0 + sk < params.outputs {
                left_value = dz((row0 + sr) * params.outputs + k0 + sk);
            }
            tile_left[sk * TILE + sr] = left_value;
            var right_value = 0.0;
            if column0 + sr < params.inputs && k0 + sk < params.outputs {
                right_value = weights[(column0 + sr) * params.outputs + k0 + sk];
            }
            tile_right[sk * TILE + sr] = right_value;
        }
        workgroupBarrier();
        multiply_staged(local, &acc);
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + local.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let column = column0 + local.x + 16u * j;
            if row < params.rows && column < params.inputs {
                dx[row * params.inputs + column] = acc[i * 4u + j];
            }
        }
    }
}

// db = Σ_rows dz: one workgroup per output column, a strided sum then a tree in shared memory.
@compute @workgroup_size(256)
fn backward_bias(@builtin(local_invocation_index) flat: u32, @builtin(workgroup_id) group: vec3<u32>) {
    let column = group.x;
    var sum = 0.0;
    for (var row = flat; row < params.rows; row += 256u) {
        sum += dz(row * params.outputs + column);
    }
    partial[flat] = sum;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if flat < half {
            partial[flat] += partial[flat + half];
        }
        workgroupBarrier();
    }
    if flat == 0u {
        d_bias[column] = partial[0];
    }
}

// Adds the split planes of the weight gradient: d_weights_sum = Σ_z plane z of d_weights.
@compute @workgroup_size(256)
fn sum_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    let count = params.inputs * params.outputs;
    if i >= count {
        return;
    }
    var sum = 0.0;
    for (var split = 0u; split < params.splits; split++) {
        sum += d_weights_split[split * count + i];
    }
    d_weights_sum[i] = sum;
}
