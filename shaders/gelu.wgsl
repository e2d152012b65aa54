// The exact (erf) GELU, PyTorch's default, and its derivative, one invocation per element.
//
// WGSL has no erf: this is the CPU backend's (`fast_erf`), a clamped odd rational function
// (Eigen's generic_fast_erf_float, a few ulp) with the same coefficients, so both backends
// agree to rounding. GELU' uses the builtin exp.

struct Params {
    count: u32, // elements
}

// Sizes of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// The pre-activation.
@group(0) @binding(1) var<storage, read> pre_activation: array<f32>;
// gelu_residual: the residual; gelu_backward: d_out.
@group(0) @binding(2) var<storage, read> other: array<f32>;
// gelu_residual: out; gelu_backward: d_pre.
@group(0) @binding(3) var<storage, read_write> destination: array<f32>;

const FRAC_1_SQRT_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989423;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

fn erf(x_in: f32) -> f32 {
    let x = clamp(x_in, -4.0, 4.0);
    let x2 = x * x;
    var p = x2 * -2.7261423e-10 + 2.7706814e-8;
    p = p * x2 + -2.101024e-6;
    p = p * x2 + -5.6925064e-5;
    p = p * x2 + -7.349906e-4;
    p = p * x2 + -2.9546e-3;
    p = p * x2 + -1.6096033e-2;
    p *= x;
    var q = x2 * -1.4566072e-5 + -2.1337406e-4;
    q = q * x2 + -1.682827e-3;
    q = q * x2 + -7.3733292e-3;
    q = q * x2 + -1.426474e-2;
    return p / q;
}

// Φ(x), the standard normal distribution function.
fn normal_cdf(x: f32) -> f32 {
    return 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
}

@compute @workgroup_size(256)
fn gelu_residual(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count {
        return;
    }
    let x = pre_activation[i];
    destination[i] = other[i] + 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
}

// d_pre = d_out · GELU'(pre), GELU'(x) = Φ(x) + x·φ(x).
@compute @workgroup_size(256)
fn gelu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count {
        return;
    }
    let x = pre_activation[i];
    destination[i] = other[i] * (normal_cdf(x) + x * INV_SQRT_2PI * exp(-0.5 * x * x));
}
