// Float-float arithmetic for the register-tiled core (tiled_product.wgsl), for the ridge
// products that must be f64-accurate (gram.wgsl, readout.wgsl). A sum is an unevaluated pair
// hi + lo of f32 (≈48 significant bits); each invocation keeps a 4×4 block of them (32 registers,
// as many as the f32 arithmetic's 8×8 block). The including file's epilogue is
//
//     fn name_write_quad(row: u32, column: u32, sums: FloatFloatQuad)
//
// called for each of the block's rows with its four sums at column, …, column + 3 (bounds
// checked by the file). The module has float_float.wgsl in front, whose `opaque` is used here
// four lanes at a time: the including file's uniform is `params` with an `opaque_zero` field.
//
// Products are split exactly (Veltkamp/Dekker) rather than made exact with fma: WGSL does not
// require fma to be fused, and an fma-based TwoProduct lost the product errors on lavapipe.
// The split is made once per staged quad as it is read, which costs 8 operations for the 16
// products of one k. Intermediate results pass through `opaque_quad` so that optimisations legal
// without strict IEEE semantics ((a + b) − a → b, fusing a product into an addition) cannot erase
// the rounding errors being captured.

const BLOCK_QUADS: u32 = 1u;
// Invocations along the tile's rows and columns (INVOCATIONS, from the header, is their product).
const THREAD_ROWS: u32 = TILE_ROWS / (4u * BLOCK_QUADS);
const THREAD_COLUMNS: u32 = TILE_COLUMNS / (4u * BLOCK_QUADS);

// Four float-float values: value c is hi[c] + lo[c].
struct FloatFloatQuad {
    hi: vec4<f32>,
    lo: vec4<f32>,
}

// Four values with their Veltkamp halves: value = hi + lo exactly, 12 significant bits each, so
// products of halves are exact in f32.
struct SplitQuad {
    value: vec4<f32>,
    hi: vec4<f32>,
    lo: vec4<f32>,
}

fn opaque_quad(value: vec4<f32>) -> vec4<f32> {
    return bitcast<vec4<f32>>(bitcast<vec4<u32>>(value) | vec4(params.opaque_zero));
}

fn split_quad(value: vec4<f32>) -> SplitQuad {
    let scaled = opaque_quad(4097.0 * value);
    let hi = scaled - opaque_quad(scaled - value);
    return SplitQuad(value, hi, value - hi);
}

// sums + a·b lane by lane, for a scalar a (with its halves) and four b: Dekker's exact product
// (p, e), TwoSum of p into the high parts, then a FastTwoSum renormalisation.
fn accumulate_quad(sums: FloatFloatQuad, a: f32, a_hi: f32, a_lo: f32, b: SplitQuad) -> FloatFloatQuad {
    let product = opaque_quad(a * b.value);
    let product_error = ((a_hi * b.hi - product) + a_hi * b.lo + a_lo * b.hi) + a_lo * b.lo;
    let sum = opaque_quad(sums.hi + product);
    let virtual_b = opaque_quad(sum - sums.hi);
    let sum_error = (sums.hi - (sum - virtual_b)) + (product - virtual_b);
    let lo = sum_error + (sums.lo + product_error);
    let hi = opaque_quad(sum + lo);
    return FloatFloatQuad(hi, lo - (hi - sum));
}

// @instantiate

// This invocation's 4×4 block: row i of it is PRODUCT_sums[i].
var<private> PRODUCT_sums: array<FloatFloatQuad, 4>;

fn PRODUCT_clear_block() {
    for (var i = 0u; i < 4u; i++) {
        PRODUCT_sums[i] = FloatFloatQuad(vec4(0.0), vec4(0.0));
    }
}

// PRODUCT_sums += the staged slice in buffer `half`.
fn PRODUCT_multiply_slice(t: u32, half: u32) {
    let tx = t % THREAD_COLUMNS;
    let ty = t / THREAD_COLUMNS;
    for (var k = half * DEPTH; k < half * DEPTH + DEPTH; k++) {
        let a = split_quad(PRODUCT_staged_left[k][ty]);
        let b = split_quad(PRODUCT_staged_right[k][tx]);
        for (var i = 0u; i < 4u; i++) {
            PRODUCT_sums[i] = accumulate_quad(PRODUCT_sums[i], a.value[i], a.hi[i], a.lo[i], b);
        }
    }
}

// Hands this invocation's 4×4 block to the including file's epilogue, row by row.
fn PRODUCT_write_tile(t: u32, row0: u32, column0: u32) {
    let tx = t % THREAD_COLUMNS;
    let ty = t / THREAD_COLUMNS;
    for (var i = 0u; i < 4u; i++) {
        PRODUCT_write_quad(row0 + 4u * ty + i, column0 + 4u * tx, PRODUCT_sums[i]);
    }
}
