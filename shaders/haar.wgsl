// One level of the orthonormal 2-D Haar transform over C interleaved channels.
//
// The image is (height·width)×C row-major; the bands are four (h·w)×C planes stacked LL, HL, LH,
// HH with h = height/2, w = width/2 (seed 001's prototype's names: LH differs along x, HL along
// y). With a, b the top pair and c, d the bottom pair of a 2×2 block: LL = (a+b+c+d)/2,
// HL = (a+b−c−d)/2, LH = (a−b+c−d)/2, HH = (a−b−c+d)/2. The matrix is orthogonal and its own
// inverse, so both directions are the same butterfly. One invocation handles one (block,
// channel): it reads four values and writes four.

struct Params {
    half_height: u32, // h, block rows
    half_width: u32,  // w, block columns
    channels: u32,    // C
}

// Sizes of this dispatch.
@group(0) @binding(0) var<uniform> params: Params;
// forward: the image; inverse: the bands.
@group(0) @binding(1) var<storage, read> source: array<f32>;
// forward: the bands; inverse: the image.
@group(0) @binding(2) var<storage, read_write> destination: array<f32>;

struct Block {
    // Flat indices of a, b, c, d in the image.
    pixels: vec4<u32>,
    // Flat indices of LL, HL, LH, HH in the bands.
    bands: vec4<u32>,
}

fn block_at(index: u32) -> Block {
    let c = params.channels;
    let w = params.half_width;
    let channel = index % c;
    let block = index / c;
    let by = block / w;
    let bx = block % w;
    let width = 2u * w;
    let top = (2u * by * width + 2u * bx) * c + channel;
    let bottom = top + width * c;
    let plane = params.half_height * w * c;
    let first = block * c + channel;
    return Block(vec4<u32>(top, top + c, bottom, bottom + c), vec4<u32>(first, first + plane, first + 2u * plane, first + 3u * plane));
}

// The self-inverse butterfly shared by both directions.
fn butterfly(v: vec4<f32>) -> vec4<f32> {
    let s01 = v.x + v.y;
    let d01 = v.x - v.y;
    let s23 = v.z + v.w;
    let d23 = v.z - v.w;
    return 0.5 * vec4<f32>(s01 + s23, s01 - s23, d01 + d23, d01 - d23);
}

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if index >= params.half_height * params.half_width * params.channels {
        return;
    }
    let at = block_at(index);
    let bands = butterfly(vec4<f32>(source[at.pixels.x], source[at.pixels.y], source[at.pixels.z], source[at.pixels.w]));
    destination[at.bands.x] = bands.x;
    destination[at.bands.y] = bands.y;
    destination[at.bands.z] = bands.z;
    destination[at.bands.w] = bands.w;
}

@compute @workgroup_size(256)
fn inverse(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if index >= params.half_height * params.half_width * params.channels {
        return;
    }
    let at = block_at(index);
    let pixels = butterfly(vec4<f32>(source[at.bands.x], source[at.bands.y], source[at.bands.z], source[at.bands.w]));
    destination[at.pixels.x] = pixels.x;
    destination[at.pixels.y] = pixels.y;
    destination[at.pixels.z] = pixels.z;
    destination[at.pixels.w] = pixels.w;
}
