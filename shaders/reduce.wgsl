// Whole-tensor reductions, first stage: each workgroup walks a strided share of the elements
// and leaves one float-float (hi, lo) partial; the host adds the few hundred partials in f64.
// Float-float keeps the partials exact enough that the f64 result does not depend on N.

struct Params {
    count: u32,       // number of elements
    opaque_zero: u32, // always 0 (see `opaque`)
}

// Size of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// First operand (the tensor for `sum`).
@group(0) @binding(1) var<storage, read> a: array<f32>;
// Second operand of `mse`.
@group(0) @binding(2) var<storage, read> b: array<f32>;
// One (hi, lo) partial per workgroup.
@group(0) @binding(3) var<storage, read_write> partials: array<vec2<f32>>;

// opaque, two_sum, add_float_float and exact_square come from float_float.wgsl, and
// workgroup_sum_float_float from the reduction core (workgroup_sum.wgsl or subgroup_sum.wgsl).

// Adds the workgroup's partials and stores the result.
fn reduce_and_store(flat: u32, group: u32, acc: vec2<f32>) {
    let total = workgroup_sum_float_float(flat, acc);
    if flat == 0u {
        partials[group] = total;
    }
}

@compute @workgroup_size(256)
fn sum_partials(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    var acc = vec2<f32>(0.0, 0.0);
    for (var i = gid.x; i < params.count; i += groups.x * 256u) {
        acc = add_float_float(acc, vec2<f32>(a[i], 0.0));
    }
    reduce_and_store(flat, group.x, acc);
}

@compute @workgroup_size(256)
fn mse_partials(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    var acc = vec2<f32>(0.0, 0.0);
    for (var i = gid.x; i < params.count; i += groups.x * 256u) {
        // The difference exactly as d + e, then (d + e)² = d² + (2d + e)·e with d² exact: the
        // same value as squaring the f64 difference.
        let difference = two_sum(a[i], -b[i]);
        let square = exact_square(difference.x);
        let correction = (2.0 * difference.x + difference.y) * difference.y;
        acc = add_float_float(acc, vec2<f32>(square.x, square.y + correction));
    }
    reduce_and_store(flat, group.x, acc);
}
