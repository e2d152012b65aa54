// Per-level losses on stacked square grids (the `Grids` layout, as in grids.wgsl): the L1 loss
// and the gradient-difference loss, each writing its gradient and leaving per-workgroup
// float-float partial sums that the host adds in f64.
//
// The host dispatches once per level, so the level's scale is a parameter and every partial of
// a dispatch belongs to one level. Each workgroup walks a strided share of the level's elements
// (one per pixel and channel, images in order); the gradient element of each is written by the
// invocation that visits it, so no two invocations write the same element.

struct Params {
    count: u32,          // elements of this level over all images
    channels: u32,       // C
    side: u32,           // side of this level's grids
    rows_per_image: u32, // rows of one image's pyramid
    level_row: u32,      // first row of this level within an image's rows
    scale: f32,          // the level's scale of the gradient
    partial: u32,        // index of this dispatch's first partial
    opaque_zero: u32,    // always 0 (see `opaque`)
}

// Sizes and the scale of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// The prediction.
@group(0) @binding(1) var<storage, read> pred: array<f32>;
// The target.
@group(0) @binding(2) var<storage, read> truth: array<f32>;
// l1_grad: overwritten with the gradient; image_gradient_l1_grad: the gradient is added.
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
// l1_grad: per workgroup (Σ|d| hi, lo, Σd² hi, lo).
@group(0) @binding(4) var<storage, read_write> l1_partials: array<vec4<f32>>;
// image_gradient_l1_grad: per workgroup (Σ|·| hi, lo).
@group(0) @binding(5) var<storage, read_write> gradient_partials: array<vec2<f32>>;

// opaque, two_sum, add_float_float and exact_square come from float_float.wgsl, and
// workgroup_sum_float_float from the reduction core (workgroup_sum.wgsl or subgroup_sum.wgsl).

// The workgroup's two float-float sums (xy and zw); the result is in every invocation.
fn reduce(flat: u32, sums: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(workgroup_sum_float_float(flat, sums.xy), workgroup_sum_float_float(flat, sums.zw));
}

// A pixel and channel of this level.
struct Pixel {
    at: u32, // flat index of the element
    y: u32,
    x: u32,
}

// The element `index` of this level (one per pixel and channel, images in order).
fn pixel_at(index: u32) -> Pixel {
    let area = params.side * params.side;
    let pixel = index / params.channels;
    let within = pixel % area;
    let row = (pixel / area) * params.rows_per_image + params.level_row + within;
    return Pixel(row * params.channels + index % params.channels, within / params.side, within % params.side);
}

// grad = scale · sign(pred − target) (0 at 0); partial sums of |d| and d² with d the f32
// difference, as the CPU backend sums them.
@compute @workgroup_size(256)
fn l1_grad(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    var absolute = vec2<f32>(0.0, 0.0);
    var squared = vec2<f32>(0.0, 0.0);
    for (var i = gid.x; i < params.count; i += groups.x * 256u) {
        let at = pixel_at(i).at;
        let d = pred[at] - truth[at];
        grad[at] = params.scale * sign(d);
        absolute = add_float_float(absolute, vec2<f32>(abs(d), 0.0));
        squared = add_float_float(squared, exact_square(d));
    }
    let total = reduce(flat, vec4<f32>(absolute, squared));
    if flat == 0u {
        l1_partials[params.partial + group.x] = total;
    }
}

// The difference of the forward differences of pred and target leaving element `at` rightwards.
fn right_difference(at: u32) -> f32 {
    let next = at + params.channels;
    return (pred[next] - pred[at]) - (truth[next] - truth[at]);
}

// The same downwards.
fn down_difference(at: u32) -> f32 {
    let next = at + params.side * params.channels;
    return (pred[next] - pred[at]) - (truth[next] - truth[at]);
}

// Σ |∇pred − ∇target| over right and down neighbours inside each grid. Each difference is
// counted once, at the element it leaves; the gradient gathers the signs of the (up to four)
// differences that touch the element, so it needs no scatter.
@compute @workgroup_size(256)
fn image_gradient_l1_grad(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let side = params.side;
    var absolute = vec2<f32>(0.0, 0.0);
    for (var i = gid.x; i < params.count; i += groups.x * 256u) {
        let p = pixel_at(i);
        var g = 0.0;
        if p.x + 1u < side {
            let d = right_difference(p.at);
            absolute = add_float_float(absolute, vec2<f32>(abs(d), 0.0));
            g -= sign(d);
        }
        if p.x > 0u {
            g += sign(right_difference(p.at - params.channels));
        }
        if p.y + 1u < side {
            let d = down_difference(p.at);
            absolute = add_float_float(absolute, vec2<f32>(abs(d), 0.0));
            g -= sign(d);
        }
        if p.y > 0u {
            g += sign(down_difference(p.at - side * params.channels));
        }
        grad[p.at] += params.scale * g;
    }
    let total = vec4<f32>(workgroup_sum_float_float(flat, absolute), 0.0, 0.0);
    if flat == 0u {
        gradient_partials[params.partial + group.x] = total.xy;
    }
}
