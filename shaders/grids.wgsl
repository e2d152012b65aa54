// Operations on stacked square grids (the `Grids` layout: images one after another, each a
// pyramid of levels of sides s, 2s, 4s, …, row-major pixels × C channels): one Haar level with
// its bands as columns, the 3×3 depthwise stencil and its backward, and the backward of nearest
// 2× upsampling.
//
// The host dispatches once per level. Every grid of a level has the same side, so an invocation
// finds its (image, y, x, channel) by division alone; the level's grid in image i starts at row
// i·rows_per_image + level_row. The Haar and upsampling kernels span two layouts whose sides
// differ by 2×: every grid of the larger starts at 4× the row of its counterpart in the smaller
// (areas quadruple), so the host describes only the smaller layout.

struct Params {
    count: u32,          // invocations (weight_partials: the level's pixels over all images)
    channels: u32,       // C
    side: u32,           // side of this level's grids (of the smaller layout, see above)
    rows_per_image: u32, // rows of one image's pyramid (of the smaller layout)
    level_row: u32,      // first row of this level within an image's rows
    splits: u32,         // weight_partials: workgroups sharing one channel of this level
    partial: u32,        // weight_partials: index of this level's first partial
    partials: u32,       // sum_weight_partials: partials of all levels
}

// Sizes of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// haar_split: the image; haar_merge: LL; depthwise3x3 and weight_partials: x;
// depthwise_input_backward: d_out; upsample_nearest_backward: d_up; sum_weight_partials: the
// partials.
@group(0) @binding(1) var<storage, read> source: array<f32>;
// haar_merge: LH, HL, HH; depthwise3x3 and depthwise_input_backward: the 9×C weights;
// weight_partials: d_out.
@group(0) @binding(2) var<storage, read> operand: array<f32>;
// haar_split: LL; haar_merge: the image; depthwise3x3: out (added to); depthwise_input_backward:
// d_x (added to); weight_partials: one 9×C partial weight gradient per workgroup;
// sum_weight_partials: d_weights; upsample_nearest_backward: d_image.
@group(0) @binding(3) var<storage, read_write> destination: array<f32>;
// haar_split: LH, HL, HH as three C-wide column blocks.
@group(0) @binding(4) var<storage, read_write> high_bands: array<f32>;

// weight_partials: each invocation's nine tap sums, tap-major, for the tree reduction.
var<workgroup> tap_sums: array<f32, 2304>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

// A pixel and channel of this level.
struct Pixel {
    first: u32, // first row of its grid
    y: u32,
    x: u32,
    channel: u32,
}

// The pixel of invocation `index` (one per pixel and channel of the level, images in order).
fn pixel_at(index: u32) -> Pixel {
    let area = params.side * params.side;
    let pixel = index / params.channels;
    let within = pixel % area;
    return Pixel(
        (pixel / area) * params.rows_per_image + params.level_row,
        within / params.side,
        within % params.side,
        index % params.channels,
    );
}

// Flat index of (y, x, channel) in the grid of `side` that starts at row `first`.
fn element(first: u32, side: u32, y: u32, x: u32, channel: u32) -> u32 {
    return (first + y * side + x) * params.channels + channel;
}

// One invocation per (block, channel) of the bands: reads a, b (top pair) and c, d (bottom pair).
@compute @workgroup_size(256)
fn haar_split(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if index >= params.count {
        return;
    }
    let block = pixel_at(index);
    let c = params.channels;
    let side = 2u * params.side;
    let top = element(4u * block.first, side, 2u * block.y, 2u * block.x, block.channel);
    let bottom = top + side * c;
    let a = source[top];
    let b = source[top + c];
    let cc = source[bottom];
    let d = source[bottom + c];
    let row = block.first + block.y * params.side + block.x;
    destination[row * c + block.channel] = 0.5 * (a + b + cc + d);
    let high = row * 3u * c + block.channel;
    high_bands[high] = 0.5 * (a - b + cc - d);
    high_bands[high + c] = 0.5 * (a + b - cc - d);
    high_bands[high + 2u * c] = 0.5 * (a - b - cc + d);
}

// The inverse of haar_split (the same orthogonal butterfly), one invocation per (block, channel).
@compute @workgroup_size(256)
fn haar_merge(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if index >= params.count {
        return;
    }
    let block = pixel_at(index);
    let c = params.channels;
    let row = block.first + block.y * params.side + block.x;
    let ll = source[row * c + block.channel];
    let high = row * 3u * c + block.channel;
    let lh = operand[high];
    let hl = operand[high + c];
    let hh = operand[high + 2u * c];
    let side = 2u * params.side;
    let top = element(4u * block.first, side, 2u * block.y, 2u * block.x, block.channel);
    let bottom = top + side * c;
    destination[top] = 0.5 * (ll + lh + hl + hh);
    destination[top + c] = 0.5 * (ll - lh + hl - hh);
    destination[bottom] = 0.5 * (ll + lh - hl - hh);
    destination[bottom + c] = 0.5 * (ll - lh - hl + hh);
}

// out[y, x] += Σ_{i,j} w[3i + j] · x[y + i − 1, x + j − 1] inside the grid (zero padding), one
// invocation per (pixel, channel).
@compute @workgroup_size(256)
fn depthwise3x3(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if index >= params.count {
        return;
    }
    let p = pixel_at(index);
    let side = params.side;
    let c = params.channels;
    var sum = 0.0;
    for (var i = 0u; i < 3u; i++) {
        // Source row + 1, so that row −1 is 0 in unsigned arithmetic.
        let y = p.y + i;
        if y == 0u || y > side {
            continue;
        }
        for (var j = 0u; j < 3u; j++) {
            let x = p.x + j;
            if x == 0u || x > side {
                continue;
            }
            sum += operand[(3u * i + j) * c + p.channel] * source[element(p.first, side, y - 1u, x - 1u, p.channel)];
        }
    }
    destination[element(p.first, side, p.y, p.x, p.channel)] += sum;
}

// d_x[y, x] += Σ_{i,j} w[3i + j] · d_out[y − i + 1, x − j + 1] inside the grid: the gather form
// of the stencil's transpose, so no two invocations write the same element.
@compute @workgroup_size(256)
fn depthwise_input_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if index >= params.count {
        return;
    }
    let p = pixel_at(index);
    let side = params.side;
    let c = params.channels;
    var sum = 0.0;
    for (var i = 0u; i < 3u; i++) {
        // The source row is y + 1 − i: unsigned, so y + 1 is compared with i first.
        let y = p.y + 1u;
        if y < i || y - i >= side {
            continue;
        }
        for (var j = 0u; j < 3u; j++) {
            let x = p.x + 1u;
            if x < j || x - j >= side {
                continue;
            }
            sum += operand[(3u * i + j) * c + p.channel] * source[element(p.first, side, y - i, x - j, p.channel)];
        }
    }
    destination[element(p.first, side, p.y, p.x, p.channel)] += sum;
}

// First stage of dL/dw[3i + j, c] = Σ_pixels d_out[y, x, c] · x[y + i − 1, x + j − 1, c]: the
// workgroup (split, channel) sums every splits-th run of 256 pixels of the level, each
// invocation in f32 over a few pixels, then a tree over the workgroup; one 9×C partial per
// (level, split), added up by sum_weight_partials.
@compute @workgroup_size(256)
fn depthwise_weight_partials(@builtin(local_invocation_index) local: u32, @builtin(workgroup_id) group: vec3<u32>) {
    let split = group.x;
    let channel = group.y;
    let side = params.side;
    let area = side * side;
    var sums: array<f32, 9>;
    for (var pixel = split * 256u + local; pixel < params.count; pixel += params.splits * 256u) {
        let first = (pixel / area) * params.rows_per_image + params.level_row;
        let within = pixel % area;
        let y = within / side;
        let x = within % side;
        let g = operand[element(first, side, y, x, channel)];
        for (var i = 0u; i < 3u; i++) {
            // Source row + 1, as in depthwise3x3.
            let sy = y + i;
            if sy == 0u || sy > side {
                continue;
            }
            for (var j = 0u; j < 3u; j++) {
                let sx = x + j;
                if sx == 0u || sx > side {
                    continue;
                }
                sums[3u * i + j] += g * source[element(first, side, sy - 1u, sx - 1u, channel)];
            }
        }
    }
    for (var tap = 0u; tap < 9u; tap++) {
        tap_sums[tap * 256u + local] = sums[tap];
    }
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if local < half {
            for (var tap = 0u; tap < 9u; tap++) {
                tap_sums[tap * 256u + local] += tap_sums[tap * 256u + local + half];
            }
        }
        workgroupBarrier();
    }
    if local < 9u {
        destination[((params.partial + split) * 9u + local) * params.channels + channel] = tap_sums[local * 256u];
    }
}

// Second stage: d_weights (9×C, overwritten) is the sum of the partials, one invocation per
// weight.
@compute @workgroup_size(256)
fn sum_weight_partials(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if index >= params.count {
        return;
    }
    var sum = 0.0;
    for (var p = 0u; p < params.partials; p++) {
        sum += source[p * params.count + index];
    }
    destination[index] = sum;
}

// d_image[y, x] = the sum of the 2×2 block of d_up above it, one invocation per (pixel,
// channel) of d_image (the smaller layout).
@compute @workgroup_size(256)
fn upsample_nearest_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if index >= params.count {
        return;
    }
    let p = pixel_at(index);
    let c = params.channels;
    let side = 2u * params.side;
    let top = element(4u * p.first, side, 2u * p.y, 2u * p.x, p.channel);
    let bottom = top + side * c;
    destination[element(p.first, params.side, p.y, p.x, p.channel)] = source[top] + source[top + c] + source[bottom] + source[bottom + c];
}
