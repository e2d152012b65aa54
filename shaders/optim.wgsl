// Optimiser updates, one invocation per parameter, following PyTorch's formulas exactly so that
// runs match the reference implementations.

struct SgdParams {
    count: u32,
    learning_rate: f32,
    momentum: f32,
}

struct AdamParams {
    count: u32,
    learning_rate: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    bias_correction1: f32, // 1 − β₁ᵗ, computed in f64 on the host
    bias_correction2: f32, // 1 − β₂ᵗ
}

// Sizes and hyperparameters of an SGD step.
@group(0) @binding(0) var<uniform> sgd_params: SgdParams;
// Sizes and hyperparameters of an Adam step (binding 0 of the Adam pipeline).
@group(0) @binding(0) var<uniform> adam_params: AdamParams;
// The parameters, updated in place.
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
// Their gradient.
@group(0) @binding(2) var<storage, read> grad: array<f32>;
// SGD velocity, or Adam's first moment m.
@group(0) @binding(3) var<storage, read_write> first_moment: array<f32>;
// Adam's second moment v.
@group(0) @binding(4) var<storage, read_write> second_moment: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

// v = momentum·v + g; p −= lr·v.
@compute @workgroup_size(256)
fn sgd_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= sgd_params.count {
        return;
    }
    let velocity = sgd_params.momentum * first_moment[i] + grad[i];
    first_moment[i] = velocity;
    param[i] -= sgd_params.learning_rate * velocity;
}

// m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²; p −= (lr/bc₁)·m / (√v/√bc₂ + ε).
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= adam_params.count {
        return;
    }
    let g = grad[i];
    let m = adam_params.beta1 * first_moment[i] + (1.0 - adam_params.beta1) * g;
    let v = adam_params.beta2 * second_moment[i] + (1.0 - adam_params.beta2) * g * g;
    first_moment[i] = m;
    second_moment[i] = v;
    let denominator = sqrt(v) / sqrt(adam_params.bias_correction2) + adam_params.epsilon;
    param[i] -= (adam_params.learning_rate / adam_params.bias_correction1) * m / denominator;
}
