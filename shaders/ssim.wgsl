// Structural similarity on stacked square grids (the `Grids` layout, as in grids.wgsl) and the
// gradient of Σ scale·(1 − mean SSIM) per grid, in four passes per level:
//
// 1. ssim_moment_rows: the horizontal half of the Gaussian window over x, y, x², y², xy;
// 2. ssim_map: the vertical half, normalised by the window's mass inside the grid, gives the
//    moments and SSIM of each element; it writes SSIM's partials wrt μx, E[x²], E[xy] (already
//    divided by the mass, so the window's adjoint is the plain blur) and leaves per-workgroup
//    float-float partial sums of SSIM that the host adds in f64;
// 3. ssim_adjoint_rows: the horizontal half of the window over those partials;
// 4. ssim_grad: the vertical half, combined with x and y into the gradient, added to grad.
//
// The window is separable, g(dy)·g(dx), and so is its mass inside the grid, so each half is 11
// taps. Every invocation writes only its own element, so no pass scatters.

struct Params {
    count: u32,          // elements (pixels × channels) of this level over all images
    channels: u32,       // C
    side: u32,           // side of this level's grids
    rows_per_image: u32, // rows of one image's pyramid
    level_row: u32,      // first row of this level within an image's rows
    scale: f32,          // ssim_map: −scale_ℓ / (side²·C), dLoss/dSSIM of every element
    partial: u32,        // ssim_map: index of this dispatch's first partial
    opaque_zero: u32,    // always 0 (see `opaque`)
}

const RADIUS: i32 = 5;
const C1: f32 = 1e-4;
const C2: f32 = 9e-4;
// Moments per element in the scratch buffer (pass 1 to 2), and partials (pass 2 to 4).
const MOMENTS: u32 = 5u;
const PARTIALS: u32 = 3u;

// Sizes and the scale of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// The prediction x.
@group(0) @binding(1) var<storage, read> pred: array<f32>;
// The target y.
@group(0) @binding(2) var<storage, read> truth: array<f32>;
// The gradient wrt x, added to.
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
// Pass 1 writes five row-blurred moments per element; pass 3 reuses it for three row-blurred
// partials per element.
@group(0) @binding(4) var<storage, read_write> row_blurred: array<f32>;
// Pass 2 writes three partials per element.
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;
// Pass 2: per workgroup (Σ SSIM hi, lo).
@group(0) @binding(6) var<storage, read_write> ssim_partials: array<vec2<f32>>;

// opaque, two_sum and add_float_float come from float_float.wgsl, and
// workgroup_sum_float_float from the reduction core (workgroup_sum.wgsl or subgroup_sum.wgsl).

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

// The Gaussian tap at offset d (σ = 1.5).
fn tap(d: i32) -> f32 {
    return exp(-f32(d * d) / 4.5);
}

// The taps at offsets [first, last] land inside the grid around position `at`.
fn first_offset(at: u32) -> i32 {
    return max(-RADIUS, -i32(at));
}

fn last_offset(at: u32) -> i32 {
    return min(RADIUS, i32(params.side) - 1 - i32(at));
}

// The window's mass around position `at` of a row (or column) inside the grid.
fn mass(at: u32) -> f32 {
    var sum = 0.0;
    for (var d = first_offset(at); d <= last_offset(at); d++) {
        sum += tap(d);
    }
    return sum;
}

// A pixel and channel of this level.
struct Pixel {
    at: u32, // flat index of the element
    y: u32,
    x: u32,
}

fn pixel_at(index: u32) -> Pixel {
    let area = params.side * params.side;
    let pixel = index / params.channels;
    let within = pixel % area;
    let row = (pixel / area) * params.rows_per_image + params.level_row + within;
    return Pixel(row * params.channels + index % params.channels, within / params.side, within % params.side);
}

// The flat index `d` pixels along a row (x) or a column (y) from `at`.
fn along_row(at: u32, d: i32) -> u32 {
    return u32(i32(at) + d * i32(params.channels));
}

fn along_column(at: u32, d: i32) -> u32 {
    return u32(i32(at) + d * i32(params.side * params.channels));
}

@compute @workgroup_size(256)
fn ssim_moment_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if index >= params.count {
        return;
    }
    let p = pixel_at(index);
    var mean_x = 0.0;
    var mean_y = 0.0;
    var mean_xx = 0.0;
    var mean_yy = 0.0;
    var mean_xy = 0.0;
    for (var d = first_offset(p.x); d <= last_offset(p.x); d++) {
        let at = along_row(p.at, d);
        let w = tap(d);
        let x = pred[at];
        let y = truth[at];
        mean_x += w * x;
        mean_y += w * y;
        mean_xx += w * x * x;
        mean_yy += w * y * y;
        mean_xy += w * x * y;
    }
    let out = MOMENTS * p.at;
    row_blurred[out] = mean_x;
    row_blurred[out + 1u] = mean_y;
    row_blurred[out + 2u] = mean_xx;
    row_blurred[out + 3u] = mean_yy;
    row_blurred[out + 4u] = mean_xy;
}

// Each workgroup walks a strided share of the level's elements, so the number of partials is
// the host's choice.
@compute @workgroup_size(256)
fn ssim_map(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    var total = vec2<f32>(0.0, 0.0);
    for (var i = gid.x; i < params.count; i += groups.x * 256u) {
        let p = pixel_at(i);
        var m = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
        for (var d = first_offset(p.y); d <= last_offset(p.y); d++) {
            let source = MOMENTS * along_column(p.at, d);
            let w = tap(d);
            for (var k = 0u; k < MOMENTS; k++) {
                m[k] += w * row_blurred[source + k];
            }
        }
        let z = mass(p.y) * mass(p.x);
        let mu_x = m[0] / z;
        let mu_y = m[1] / z;
        let variance_x = m[2] / z - mu_x * mu_x;
        let variance_y = m[3] / z - mu_y * mu_y;
        let covariance = m[4] / z - mu_x * mu_y;
        let luminance = 2.0 * mu_x * mu_y + C1;
        let contrast = 2.0 * covariance + C2;
        let luminance_norm = mu_x * mu_x + mu_y * mu_y + C1;
        let contrast_norm = variance_x + variance_y + C2;
        let denominator = luminance_norm * contrast_norm;
        let ssim = luminance * contrast / denominator;
        total = add_float_float(total, vec2<f32>(ssim, 0.0));
        // ∂S/∂σx² = −S/(σx² + σy² + C2), ∂S/∂σxy = 2·L/D; μx also moves σx² (by −2μx) and σxy
        // (by −μy).
        let d_variance = -ssim / contrast_norm;
        let d_covariance = 2.0 * luminance / denominator;
        let d_mean = 2.0 * mu_y * contrast / denominator - 2.0 * mu_x * ssim / luminance_norm
            - 2.0 * mu_x * d_variance - mu_y * d_covariance;
        let weight = params.scale / z;
        let out = PARTIALS * p.at;
        partials[out] = weight * d_mean;
        partials[out + 1u] = weight * d_variance;
        partials[out + 2u] = weight * d_covariance;
    }
    let sum = workgroup_sum_float_float(flat, total);
    if flat == 0u {
        ssim_partials[params.partial + group.x] = sum;
    }
}

@compute @workgroup_size(256)
fn ssim_adjoint_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if index >= params.count {
        return;
    }
    let p = pixel_at(index);
    var sum = vec3<f32>(0.0, 0.0, 0.0);
    for (var d = first_offset(p.x); d <= last_offset(p.x); d++) {
        let source = PARTIALS * along_row(p.at, d);
        sum += tap(d) * vec3<f32>(partials[source], partials[source + 1u], partials[source + 2u]);
    }
    let out = PARTIALS * p.at;
    row_blurred[out] = sum.x;
    row_blurred[out + 1u] = sum.y;
    row_blurred[out + 2u] = sum.z;
}

// grad += Σ_p w(p, q)/Z(p)·(∂S/∂μx + 2x·∂S/∂E[x²] + y·∂S/∂E[xy])(p) · dLoss/dS.
@compute @workgroup_size(256)
fn ssim_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if index >= params.count {
        return;
    }
    let p = pixel_at(index);
    var sum = vec3<f32>(0.0, 0.0, 0.0);
    for (var d = first_offset(p.y); d <= last_offset(p.y); d++) {
        let source = PARTIALS * along_column(p.at, d);
        sum += tap(d) * vec3<f32>(row_blurred[source], row_blurred[source + 1u], row_blurred[source + 2u]);
    }
    grad[p.at] += sum.x + 2.0 * pred[p.at] * sum.y + truth[p.at] * sum.z;
}
