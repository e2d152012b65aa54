// Fused reservoir update: out = tanh(input·W_in + state·W_hh + bias).
//
// Both products accumulate into the same registers of one instance of the register-tiled core
// (tiled_product.wgsl, product `step`), so the pre-activation never goes to memory.

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

// The two products as one sum over k in [0, inputs + hidden): the row [u | h] times the stacked
// weights [W_in; W_hh]. A slice straddling the seam reads from both.
const step_left_along_k: bool = true;
const step_right_along_k: bool = false;

fn step_left_value(row: u32, k: u32) -> f32 {
    if row >= params.rows {
        return 0.0;
    }
    if k < params.inputs {
        return input[row * params.inputs + k];
    }
    let j = k - params.inputs;
    if j < params.hidden {
        return state[row * params.hidden + j];
    }
    return 0.0;
}

fn step_right_value(k: u32, column: u32) -> f32 {
    if column >= params.hidden {
        return 0.0;
    }
    if k < params.inputs {
        return input_weights[k * params.hidden + column];
    }
    let j = k - params.inputs;
    if j < params.hidden {
        return recurrent_weights[j * params.hidden + column];
    }
    return 0.0;
}

fn step_write_value(row: u32, column: u32, sum: f32) {
    if row < params.rows && column < params.hidden {
        // tanh.wgsl's, as the CPU backend computes it.
        out[row * params.hidden + column] = rational_tanh(sum + bias[column]);
    }
}

@compute @workgroup_size(INVOCATIONS)
fn step(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let row0 = tile_row0(group, groups);
    let column0 = group.x * TILE_COLUMNS;
    if row0 >= params.rows {
        return;
    }
    // Without a state the sum stops at the seam: the recurrent product is skipped.
    let depth = params.inputs + select(0u, params.hidden, params.has_state != 0u);
    step_multiply_tile(t, row0, column0, 0u, depth);
    step_write_tile(t, row0, column0);
}
