// 2× upsampling of a (height·width)×C image into (2height·2width)×C, one invocation per output
// element.

struct Params {
    height: u32,   // source rows
    width: u32,    // source columns
    channels: u32, // C
}

// Sizes of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// (height·width)×C source image.
@group(0) @binding(1) var<storage, read> source: array<f32>;
// (2height·2width)×C result.
@group(0) @binding(2) var<storage, read_write> destination: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

fn source_at(y: u32, x: u32, channel: u32) -> f32 {
    return source[(y * params.width + x) * params.channels + channel];
}

@compute @workgroup_size(256)
fn nearest(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    let c = params.channels;
    let out_width = 2u * params.width;
    if index >= 4u * params.height * params.width * c {
        return;
    }
    let channel = index % c;
    let pixel = index / c;
    destination[index] = source_at((pixel / out_width) / 2u, (pixel % out_width) / 2u, channel);
}

// Source position and weight of the far neighbour along one axis, PyTorch's
// align_corners=False: src = max(0, (dst + 0.5)/2 − 0.5), neighbour clamped to the edge.
struct Axis {
    near: u32,
    far: u32,
    weight: f32,
}

fn axis(destination_index: u32, size: u32) -> Axis {
    let position = max(0.0, (f32(destination_index) + 0.5) * 0.5 - 0.5);
    let near = min(u32(position), size - 1u);
    let far = min(near + 1u, size - 1u);
    return Axis(near, far, position - f32(near));
}

@compute @workgroup_size(256)
fn bilinear(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    let c = params.channels;
    let out_width = 2u * params.width;
    if index >= 4u * params.height * params.width * c {
        return;
    }
    let channel = index % c;
    let pixel = index / c;
    let ay = axis(pixel / out_width, params.height);
    let ax = axis(pixel % out_width, params.width);
    let top = mix(source_at(ay.near, ax.near, channel), source_at(ay.near, ax.far, channel), ax.weight);
    let bottom = mix(source_at(ay.far, ax.near, channel), source_at(ay.far, ax.far, channel), ax.weight);
    destination[index] = mix(top, bottom, ay.weight);
}
