// Element-wise operations, one invocation per element of a flat index space.

struct Params {
    count: u32,       // elements (copy_columns: rows × source columns; diagonal blocks: see there)
    scalar_a: f32,    // clip: lo; axpy: alpha; mse_grad: 2·scale
    scalar_b: f32,    // clip: hi
    source_columns: u32,      // copy_columns: columns of the part; diagonal blocks: of the one read
    destination_columns: u32, // copy_columns: columns of the result; diagonal blocks: of the result
    column_offset: u32,       // copy_columns: first result column of the part
}

// Sizes and scalars of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// The operand read (x of axpy, the part of copy_columns, pred of mse_grad, base of
// residual_clip and clip_backward, the block or matrix of the diagonal blocks).
@group(0) @binding(1) var<storage, read> source: array<f32>;
// The second operand read (target of mse_grad, delta of residual_clip and clip_backward).
@group(0) @binding(2) var<storage, read> other: array<f32>;
// The result, updated in place by clip, axpy, clip_backward and the diagonal blocks.
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

// A residual prediction kept in the image range: clamp(base + delta, 0, 1).
@compute @workgroup_size(256)
fn residual_clip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count {
        return;
    }
    destination[i] = clamp(source[i] + other[i], 0.0, 1.0);
}

// Backward of residual_clip in place: the gradient stops where base + delta was clamped (on
// the bounds themselves it passes, as PyTorch's clamp does).
@compute @workgroup_size(256)
fn clip_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count {
        return;
    }
    let value = source[i] + other[i];
    if !(value >= 0.0 && value <= 1.0) {
        destination[i] = 0.0;
    }
}

// Adds the C×C block to each of the k diagonal blocks of the kC×kC destination, one
// invocation per (diagonal block, element of the block): count = k·C·C.
@compute @workgroup_size(256)
fn add_diagonal_blocks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count {
        return;
    }
    let c = params.source_columns;
    let diagonal = i / (c * c);
    let within = i % (c * c);
    let row = diagonal * c + within / c;
    let column = diagonal * c + within % c;
    destination[row * params.destination_columns + column] += source[within];
}

// Adds the sum of the k diagonal C×C blocks of the kC×kC source to the C×C destination, one
// invocation per element of the block: count = C·C.
@compute @workgroup_size(256)
fn sum_diagonal_blocks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if i >= params.count {
        return;
    }
    let c = params.destination_columns;
    let n = params.source_columns;
    var sum = 0.0;
    for (var diagonal = 0u; diagonal < n / c; diagonal++) {
        sum += source[(diagonal * c + i / c) * n + diagonal * c + i % c];
    }
    destination[i] += sum;
}
