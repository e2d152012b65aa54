// f64-accurate products for the ridge readouts, in float-float arithmetic: a value is an
// unevaluated sum hi + lo of two f32 (≈48 significant bits). Products of two f32 are made exact
// with fma (TwoProduct) and added with TwoSum, so an N-term dot product keeps ~1e-13 relative
// accuracy where plain f32 keeps ~1e-7 — the ridge systems have condition numbers up to 1e13.
//
// `gram`:    C = Aᵀ·B over the rows, split along the rows (z) so long, thin operands still fill
//            the device; each split writes its own hi/lo partial and the host adds them in f64.
// `readout`: out = H·W with W given as f64 split into hi + lo f32 matrices.
//
// Optimisers defeat float-float arithmetic in two ways, both legal without strict IEEE
// semantics (which WGSL does not promise): fusing `a*b` into a later addition, and
// "simplifying" (a + b) − a to b, which erases exactly the rounding error being captured. fma
// cannot be relied on either: WGSL does not require it to be fused, and an fma-based TwoProduct
// lost the product errors on lavapipe. So products are split exactly (Veltkamp/Dekker) and
// intermediate results pass through `opaque`, which ORs their bits with a zero the compiler
// cannot see.

struct GramParams {
    rows: u32,           // N, rows of A and B
    left_columns: u32,   // p, columns of this block A
    right_columns: u32,  // q, columns of B
    rows_per_split: u32, // rows summed by one z-slice
    total_rows: u32,     // Σ p over all blocks: rows of the full result
    row_offset: u32,     // first result row of this block
    symmetric: u32,      // 1 when A is B: tiles below the diagonal are skipped
    opaque_zero: u32,    // always 0 (see `opaque`)
}

struct ReadoutParams {
    rows: u32,          // N, rows of H and out
    block_columns: u32, // columns of this block of H
    out_columns: u32,   // columns of W and out
    weight_row: u32,    // first row of W that multiplies this block
    first: u32,         // 1: start from zero instead of the carried partial sum
    last: u32,          // 1: round to f32 into out instead of carrying hi/lo
    opaque_zero: u32,   // always 0 (see `opaque`)
}

// Sizes of a Gram dispatch.
@group(0) @binding(0) var<uniform> gram_params: GramParams;
// N×p block A.
@group(0) @binding(1) var<storage, read> left: array<f32>;
// N×q right factor B.
@group(0) @binding(2) var<storage, read> right: array<f32>;
// splits × total_rows × q partial products as (hi, lo).
@group(0) @binding(3) var<storage, read_write> partial_products: array<vec2<f32>>;

// Sizes of a readout dispatch (binding 0 of the readout pipeline).
@group(0) @binding(0) var<uniform> readout_params: ReadoutParams;
// N×block_columns block of H.
@group(0) @binding(4) var<storage, read> hidden: array<f32>;
// High parts of the f64 weights (Σ block columns × out_columns).
@group(0) @binding(5) var<storage, read> weights_hi: array<f32>;
// Low parts: weight − f64(hi), rounded to f32.
@group(0) @binding(6) var<storage, read> weights_lo: array<f32>;
// N×out_columns (hi, lo) sums carried from one block to the next.
@group(0) @binding(7) var<storage, read_write> carry: array<vec2<f32>>;
// N×out_columns result, rounded to f32 after the last block.
@group(0) @binding(8) var<storage, read_write> readout_out: array<f32>;

// Gram operand slices [k][column], 16 deep, each value with its Veltkamp halves.
var<workgroup> gram_left: array<vec3<f32>, 256>;
var<workgroup> gram_right: array<vec3<f32>, 256>;
// Readout slices: H as [k][row] (16×64) and the weights as [k][column] (16×4); H and the high
// weight parts with their Veltkamp halves. H is kept as three scalar planes because an array of
// vec3 pads to 16 bytes and would exceed the 16 KiB of workgroup memory WebGPU guarantees.
var<workgroup> readout_hidden: array<f32, 1024>;
var<workgroup> readout_hidden_hi: array<f32, 1024>;
var<workgroup> readout_hidden_lo: array<f32, 1024>;
var<workgroup> readout_hi: array<vec3<f32>, 64>;
var<workgroup> readout_lo: array<f32, 64>;

// The value with its bits ORed with `zero` (always 0): unchanged, but opaque to the optimiser.
fn opaque(value: f32, zero: u32) -> f32 {
    return bitcast<f32>(bitcast<u32>(value) | zero);
}

// Veltkamp split: (value, hi, lo) with value = hi + lo and 12-bit halves, so products of
// halves are exact in f32. Done once per staged value, not once per product.
fn split(value: f32, zero: u32) -> vec3<f32> {
    let scaled = opaque(4097.0 * value, zero);
    let difference = opaque(scaled - value, zero);
    let hi = scaled - difference;
    return vec3<f32>(value, hi, value - hi);
}

// acc + a·b in float-float: Dekker's exact product (p, e), TwoSum of p into the high part,
// then a FastTwoSum renormalisation.
fn accumulate_product(acc: vec2<f32>, a: vec3<f32>, b: vec3<f32>, zero: u32) -> vec2<f32> {
    let product = opaque(a.x * b.x, zero);
    let product_error = ((a.y * b.y - product) + a.y * b.z + a.z * b.y) + a.z * b.z;
    let sum = opaque(acc.x + product, zero);
    let virtual_b = opaque(sum - acc.x, zero);
    let sum_error = (acc.x - (sum - virtual_b)) + (product - virtual_b);
    let lo = sum_error + (acc.y + product_error);
    let hi = opaque(sum + lo, zero);
    return vec2<f32>(hi, lo - (hi - sum));
}

// x + y in float-float.
fn add_float_float(x: vec2<f32>, y: vec2<f32>, zero: u32) -> vec2<f32> {
    let sum = opaque(x.x + y.x, zero);
    let virtual_b = opaque(sum - x.x, zero);
    let lo = ((x.x - (sum - virtual_b)) + (y.x - virtual_b)) + (x.y + y.y);
    let hi = opaque(sum + lo, zero);
    return vec2<f32>(hi, lo - (hi - sum));
}

@compute @workgroup_size(16, 16)
fn gram(
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
    @builtin(workgroup_id) group: vec3<u32>,
) {
    let p = gram_params.left_columns;
    let q = gram_params.right_columns;
    if gram_params.symmetric != 0u && group.y > group.x {
        return;
    }
    let i0 = group.y * 16u;
    let j0 = group.x * 16u;
    let k_begin = group.z * gram_params.rows_per_split;
    let k_end = min(k_begin + gram_params.rows_per_split, gram_params.rows);
    let zero = gram_params.opaque_zero;
    var acc = vec2<f32>(0.0, 0.0);
    let sk = flat / 16u;
    let sc = flat % 16u;
    for (var k0 = k_begin; k0 < k_end; k0 += 16u) {
        let k = k0 + sk;
        var left_value = 0.0;
        var right_value = 0.0;
        if k < k_end {
            if i0 + sc < p {
                left_value = left[k * p + i0 + sc];
            }
            if j0 + sc < q {
                right_value = right[k * q + j0 + sc];
            }
        }
        gram_left[flat] = split(left_value, zero);
        gram_right[flat] = split(right_value, zero);
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            acc = accumulate_product(acc, gram_left[kk * 16u + local.y], gram_right[kk * 16u + local.x], zero);
        }
        workgroupBarrier();
    }
    let i = i0 + local.y;
    let j = j0 + local.x;
    if i < p && j < q {
        partial_products[(group.z * gram_params.total_rows + gram_params.row_offset + i) * q + j] = acc;
    }
}

@compute @workgroup_size(4, 64)
fn readout(
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) flat: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let rows = readout_params.rows;
    let width = readout_params.block_columns;
    let outs = readout_params.out_columns;
    // Row tiles of 64 may be folded into z beyond the per-dimension dispatch limit.
    let row0 = (group.y + group.z * groups.y) * 64u;
    let column0 = group.x * 4u;
    if row0 >= rows {
        return;
    }
    let zero = readout_params.opaque_zero;
    var acc = vec2<f32>(0.0, 0.0);
    for (var k0 = 0u; k0 < width; k0 += 16u) {
        for (var e = 0u; e < 4u; e++) {
            // H[row][k]: consecutive invocations walk along k (contiguous).
            let slot = flat + 256u * e;
            let sr = slot / 16u;
            let sk = slot % 16u;
            var value = 0.0;
            if row0 + sr < rows && k0 + sk < width {
                value = hidden[(row0 + sr) * width + k0 + sk];
            }
            let parts = split(value, zero);
            readout_hidden[sk * 64u + sr] = parts.x;
            readout_hidden_hi[sk * 64u + sr] = parts.y;
            readout_hidden_lo[sk * 64u + sr] = parts.z;
        }
        if flat < 64u {
            let wk = flat / 4u;
            let wc = flat % 4u;
            var hi = 0.0;
            var lo = 0.0;
            if k0 + wk < width && column0 + wc < outs {
                let at = (readout_params.weight_row + k0 + wk) * outs + column0 + wc;
                hi = weights_hi[at];
                lo = weights_lo[at];
            }
            readout_hi[flat] = split(hi, zero);
            readout_lo[flat] = lo;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            let at = kk * 64u + local.y;
            let h = vec3<f32>(readout_hidden[at], readout_hidden_hi[at], readout_hidden_lo[at]);
            acc = accumulate_product(acc, h, readout_hi[kk * 4u + local.x], zero);
            // h·lo is 2⁻²⁴ of the term, so its own rounding is below float-float precision.
            acc.y += h.x * readout_lo[kk * 4u + local.x];
        }
        workgroupBarrier();
    }
    let row = row0 + local.y;
    let column = column0 + local.x;
    if row < rows && column < outs {
        let at = row * outs + column;
        if readout_params.first == 0u {
            acc = add_float_float(acc, carry[at], zero);
        }
        if readout_params.last != 0u {
            readout_out[at] = acc.x + acc.y;
        } else {
            carry[at] = acc;
        }
    }
}
