// The picture the window shows of an image tensor, written on the device into the Rgba8Unorm
// texture egui samples, so a displayed frame never leaves the GPU. Quantised exactly as the host's
// `color_image_from_rgb`: NaN to 0, clamped to [0, 1], ×255 rounded half away from zero.

struct Params {
    size: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> image: array<f32>;
@group(0) @binding(2) var picture: texture_storage_2d<rgba8unorm, write>;

fn quantised(v: f32) -> f32 {
    // NaN by its bits: comparisons with NaN may be folded away by the shader compiler.
    if (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u {
        return 0.0;
    }
    let x = clamp(v, 0.0, 1.0) * 255.0;
    // WGSL's round() goes half to even; the host's goes half away from zero.
    var r = round(x);
    if x - trunc(x) == 0.5 {
        r = trunc(x) + 1.0;
    }
    return r / 255.0;
}

@compute @workgroup_size(8, 8)
fn present(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.size || id.y >= params.size {
        return;
    }
    let at = 3u * (id.y * params.size + id.x);
    let rgb = vec3(quantised(image[at]), quantised(image[at + 1u]), quantised(image[at + 2u]));
    textureStore(picture, vec2<i32>(id.xy), vec4(rgb, 1.0));
}
