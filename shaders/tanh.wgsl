// tanh for f32, the same function as the CPU backend's `fast_tanh` (Eigen's clamped [13/6]
// rational form, a few ulp everywhere). Drivers' own tanh differs between adapters, and the
// exp-based ones lose relative precision near zero; the reservoir states feed ill-conditioned
// ridge systems, where that costs a refinement loop hundredths of a dB, so both backends
// compute this one.
fn rational_tanh(value: f32) -> f32 {
    let x = clamp(value, -7.905311, 7.905311);
    let x2 = x * x;
    var p = x2 * -2.7607685e-16 + 2.000188e-13;
    p = p * x2 + -8.604672e-11;
    p = p * x2 + 5.122297e-8;
    p = p * x2 + 1.4857224e-5;
    p = p * x2 + 6.3726193e-4;
    p = p * x2 + 4.8935246e-3;
    p = p * x;
    var q = x2 * 1.1982584e-6 + 1.1853471e-4;
    q = q * x2 + 2.2684346e-3;
    q = q * x2 + 4.893525e-3;
    // Below 4e-4, tanh(x) = x to f32 precision, and the rational form loses a bit there.
    return select(p / q, x, abs(x) < 4e-4);
}
