// Dense layers: the forward product with bias and activation fused into its epilogue, and the
// backward products. dz = dy ⊙ act'(y) is never stored: the backward products compute it while
// staging their operands, which saves a full N×outputs buffer and a pass over it.
//
// The products are instances of the register-tiled core (tiled_product.wgsl: forward,
// weight_gradient, input_gradient); this file says how each reads its operands and writes.
// On the cooperative arithmetic (f16 operands) the backward products stage dz scaled by
// gradient_scale, a power of two that brings the gradient of a mean over N rows (of order 1/N,
// below f16's normal range at image sizes) back to order one, and divide their sums by it:
// exact in f32, so the host passes 1 unless a product is cooperative.

struct Params {
    rows: u32,       // N, rows of x, y and dy
    inputs: u32,     // columns of x = rows of W
    outputs: u32,    // columns of W, b, y and dy
    activation: u32, // Activation::index(): 0 identity, 1 relu, 2 tanh, 3 sigmoid
    rows_per_split: u32, // backward_weights: rows summed by one z-slice
    splits: u32,         // backward_weights / sum_splits: number of z-slices
    opaque_zero: u32,    // always 0 (float_float.wgsl, which the reduction core needs)
    gradient_scale: f32, // backward products: a power of two dz is staged multiplied by
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

// Plane of `d_weights` this workgroup's split of the weight-gradient sum writes.
var<private> plane: u32;

fn activate(z: f32) -> f32 {
    switch params.activation {
        case 1u: {
            return max(z, 0.0);
        }
        case 2u: {
            // tanh.wgsl's, as the CPU backend computes it.
            return rational_tanh(z);
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

// The forward product x·W (N×inputs · inputs×outputs), epilogue act(· + b).
const forward_left_along_k: bool = true;
const forward_right_along_k: bool = false;

fn forward_left_value(row: u32, k: u32) -> f32 {
    if row < params.rows && k < params.inputs {
        return x[row * params.inputs + k];
    }
    return 0.0;
}

fn forward_right_value(k: u32, column: u32) -> f32 {
    if k < params.inputs && column < params.outputs {
        return weights[k * params.outputs + column];
    }
    return 0.0;
}

fn forward_write_value(row: u32, column: u32, sum: f32) {
    if row < params.rows && column < params.outputs {
        y_out[row * params.outputs + column] = activate(sum + bias[column]);
    }
}

// The weight gradient xᵀ·dz (inputs×N · N×outputs): both operands are stored with the summed
// index as their row, so both are read along their rows.
const weight_gradient_left_along_k: bool = false;
const weight_gradient_right_along_k: bool = false;

fn weight_gradient_left_value(row: u32, k: u32) -> f32 {
    if row < params.inputs && k < params.rows {
        return x[k * params.inputs + row];
    }
    return 0.0;
}

fn weight_gradient_right_value(k: u32, column: u32) -> f32 {
    if k < params.rows && column < params.outputs {
        return dz(k * params.outputs + column) * params.gradient_scale;
    }
    return 0.0;
}

fn weight_gradient_write_value(row: u32, column: u32, sum: f32) {
    if row < params.inputs && column < params.outputs {
        d_weights[plane + row * params.outputs + column] = sum / params.gradient_scale;
    }
}

// The input gradient dz·Wᵀ (N×outputs · outputs×inputs): Wᵀ is read along W's rows, i.e. along k.
const input_gradient_left_along_k: bool = true;
const input_gradient_right_along_k: bool = true;

fn input_gradient_left_value(row: u32, k: u32) -> f32 {
    if row < params.rows && k < params.outputs {
        return dz(row * params.outputs + k) * params.gradient_scale;
    }
    return 0.0;
}

fn input_gradient_right_value(k: u32, column: u32) -> f32 {
    if k < params.outputs && column < params.inputs {
        return weights[column * params.outputs + k];
    }
    return 0.0;
}

fn input_gradient_write_value(row: u32, column: u32, sum: f32) {
    if row < params.rows && column < params.inputs {
        dx[row * params.inputs + column] = sum / params.gradient_scale;
    }
}

// y = act(x·W + b).
@compute @workgroup_size(INVOCATIONS)
fn forward(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let row0 = tile_row0(group, groups);
    let column0 = group.x * TILE_COLUMNS;
    if row0 >= params.rows {
        return;
    }
    forward_multiply_tile(t, row0, column0, 0u, params.inputs);
    forward_write_tile(t, row0, column0);
}

// dW = xᵀ·dz: an inputs×outputs result summed over the N rows. Few output tiles and a long
// sum, so the rows are split over z; slice z writes its partial to plane z of `d_weights` and
// `sum_splits` adds the planes.
@compute @workgroup_size(INVOCATIONS)
fn backward_weights(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) group: vec3<u32>,
) {
    let row0 = group.y * TILE_ROWS;
    let column0 = group.x * TILE_COLUMNS;
    if row0 >= params.inputs {
        return;
    }
    let k_begin = group.z * params.rows_per_split;
    let k_end = min(k_begin + params.rows_per_split, params.rows);
    plane = group.z * params.inputs * params.outputs;
    weight_gradient_multiply_tile(t, row0, column0, k_begin, k_end);
    weight_gradient_write_tile(t, row0, column0);
}

// dx = dz·Wᵀ: an N×inputs result summed over the outputs.
@compute @workgroup_size(INVOCATIONS)
fn backward_input(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let row0 = tile_row0(group, groups);
    let column0 = group.x * TILE_COLUMNS;
    if row0 >= params.rows {
        return;
    }
    input_gradient_multiply_tile(t, row0, column0, 0u, params.outputs);
    input_gradient_write_tile(t, row0, column0);
}

// db = Σ_rows dz: one workgroup per output column, a strided sum then the reduction core's
// workgroup_sum (subgroup operations where the adapter has them).
@compute @workgroup_size(256)
fn backward_bias(@builtin(local_invocation_index) flat: u32, @builtin(workgroup_id) group: vec3<u32>) {
    let column = group.x;
    var sum = 0.0;
    for (var row = flat; row < params.rows; row += 256u) {
        sum += dz(row * params.outputs + column);
    }
    let total = workgroup_sum(flat, sum);
    if flat == 0u {
        d_bias[column] = total;
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
