// Float-float arithmetic (a value as an unevaluated sum hi + lo of two f32s), shared by the
// shaders that accumulate sums the host finishes in f64: reduce.wgsl, loss.wgsl and ssim.wgsl
// (put in front of them with the reduction core, src/compute/gpu/reductions.rs), and gram.wgsl
// and readout.wgsl (with the float-float tiled core, src/compute/gpu/tiled.rs). Each declares its
// uniform as `params` with an `opaque_zero: u32` field that is always 0.

// The value with its bits ORed with a zero the compiler cannot see: unchanged, but opaque to
// optimisations that would erase rounding errors ((a + b) − a → b, or fusing a product into an
// addition).
fn opaque(value: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(value) | params.opaque_zero);
}

// (s, e) with s + e = a + b exactly (TwoSum).
fn two_sum(a: f32, b: f32) -> vec2<f32> {
    let sum = opaque(a + b);
    let virtual_b = opaque(sum - a);
    return vec2<f32>(sum, (a - (sum - virtual_b)) + (b - virtual_b));
}

// Float-float addition: TwoSum of the highs, lows added, renormalised.
fn add_float_float(x: vec2<f32>, y: vec2<f32>) -> vec2<f32> {
    let sum = two_sum(x.x, y.x);
    let lo = sum.y + (x.y + y.y);
    let hi = opaque(sum.x + lo);
    return vec2<f32>(hi, lo - (hi - sum.x));
}

// (p, e) with p + e = a·a exactly (Dekker's product with a Veltkamp split; fma may round twice).
fn exact_square(a: f32) -> vec2<f32> {
    let scaled = opaque(4097.0 * a);
    let hi = scaled - opaque(scaled - a);
    let lo = a - hi;
    let square = opaque(a * a);
    return vec2<f32>(square, ((hi * hi - square) + 2.0 * hi * lo) + lo * lo);
}
