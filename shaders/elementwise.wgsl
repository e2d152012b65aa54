// Element-wise operations, one invocation per element of a flat index space.

struct Params {
    count: u32,       // elements (for copy_columns: rows × source columns)
    scalar_a: f32,    // clip: lo; axpy: alpha; mse_grad: 2·scale
    scalar_b: f32,    // clip: hi
    source_columns: u32,      // copy_columns: columns of the part
    destination_columns: u32, // copy_columns: columns of the result
    column_offset: u32,       // copy_columns: first result column of the part
}

// Sizes and scalars of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// The operand read (x of axpy, the part of copy_columns, pred of mse_grad).
@group(0) @binding(1) var<storage, read> source: array<f32>;
// The second operand read (target of mse_grad).
@group(0) @binding(2) var<storage, read> other: array<f32>;
// The result, updated in place by clip and axpy.
@group(0) @binding(3) var<storage, read_write> destination: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

@compute @workgroup_size(256)
fn clip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count {
        return;
    }
    destination[i] = clamp(destination[i], params.scalar_a, params.scalar_b);
}

@compute @workgroup_size(256)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count {
        return;
    }
    destination[i] += params.scalar_a * source[i];
}

@compute @workgroup_size(256)
fn copy_columns(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count {
        return;
    }
    let row = i / params.source_columns;
    let column = i % params.source_columns;
    destination[row * params.destination_columns + params.column_offset + column] = source[i];
}

@compute @workgroup_size(256)
fn mse_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count {
        return;
    }
    destination[i] = params.scalar_a * (source[i] - other[i]);
}
