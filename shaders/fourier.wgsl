// Fourier feature encoding γ(x) = [sin(2π x·B), cos(2π x·B)].
//
// One invocation per (row, frequency) pair writes both the sine and the cosine, so the dot
// product is computed once. The phase x·B is reduced to [0, 1) before the multiplication by 2π:
// the reduction is exact in f32, and GPU sin/cos lose accuracy quickly for large arguments.

struct Params {
    rows: u32,        // N, rows of coords and out
    frequencies: u32, // m, columns of the frequency matrix; out has 2m columns
}

// Sizes of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// N×2 coordinates, row-major.
@group(0) @binding(1) var<storage, read> coords: array<f32>;
// 2×m frequency matrix B, row-major.
@group(0) @binding(2) var<storage, read> frequencies: array<f32>;
// N×2m encoding: sines in columns [0, m), cosines in [m, 2m).
@group(0) @binding(3) var<storage, read_write> encoded: array<f32>;

const TWO_PI: f32 = 6.283185307179586;

@compute @workgroup_size(256)
fn encode(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = gid.x + gid.y * groups.x * 256u;
    let m = params.frequencies;
    if index >= params.rows * m {
        return;
    }
    let row = index / m;
    let column = index % m;
    let phase = coords[2u * row] * frequencies[column] + coords[2u * row + 1u] * frequencies[m + column];
    let angle = TWO_PI * (phase - floor(phase));
    encoded[row * 2u * m + column] = sin(angle);
    encoded[row * 2u * m + m + column] = cos(angle);
}
