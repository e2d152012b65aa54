// Cooperative-matrix staging and arithmetic for the register-tiled core (tiled_product.wgsl):
// the operands are staged as f16 and summed by the adapter's matrix units (tensor cores,
// simdgroup matrices) as FRAGMENT×FRAGMENT×FRAGMENT multiply-adds into f32 fragments. Only for
// the trained methods' dense layers: the ridge products stay float-float. The header adds
//
//     enable f16; enable wgpu_cooperative_matrix;   // first lines of the module
//     const FRAGMENT: u32 = 16u;         // edge of one fragment (the adapter's f16 → f32 size)
//     const FRAGMENT_ROWS: u32 = 4u;     // fragments one subgroup sums, down and across
//     const FRAGMENT_COLUMNS: u32 = 2u;
//     const SUBGROUP_SIZE: u32 = 32u;    // the adapter's one subgroup size
//     alias LeftFragment = coop_mat16x16<f16, A>;
//     alias RightFragment = coop_mat16x16<f16, B>;
//     alias SumFragment = coop_mat16x16<f32, C>;
//
// Subgroup s (invocations s·SUBGROUP_SIZE, … — how adapters with one subgroup size form them
// for a one-dimensional workgroup) owns a block of FRAGMENT_ROWS × FRAGMENT_COLUMNS fragments
// of the tile. DEPTH is a multiple of FRAGMENT. The including file's epilogue is the f32
// arithmetic's,
//
//     fn name_write_value(row: u32, column: u32, sum: f32) // bounds checked by the file
//
// Values beyond f16's range are clamped to it as they are staged; the dense layers scale their
// gradients into that range (linear.wgsl).

const SUBGROUP_ROWS: u32 = TILE_ROWS / (FRAGMENT * FRAGMENT_ROWS);
const SUBGROUP_COLUMNS: u32 = TILE_COLUMNS / (FRAGMENT * FRAGMENT_COLUMNS);
const SUBGROUP_FRAGMENTS: u32 = FRAGMENT_ROWS * FRAGMENT_COLUMNS;
const F16_LARGEST: f32 = 65504.0;

fn half_of(value: f32) -> f16 {
    return f16(clamp(value, -F16_LARGEST, F16_LARGEST));
}

// @instantiate

// Two slices of the left operand, column-major: element (row, k) at (half·DEPTH + k)·TILE_ROWS + row.
var<workgroup> PRODUCT_staged_left: array<f16, 2u * DEPTH * TILE_ROWS>;
// Two slices of the right operand, row-major: element (k, column) at (half·DEPTH + k)·TILE_COLUMNS + column.
var<workgroup> PRODUCT_staged_right: array<f16, 2u * DEPTH * TILE_COLUMNS>;
// One fragment per subgroup, stored for the epilogue (row-major).
var<workgroup> PRODUCT_spilled: array<f32, SUBGROUP_ROWS * SUBGROUP_COLUMNS * FRAGMENT * FRAGMENT>;
// This subgroup's sums, fragment (i, j) at i·FRAGMENT_COLUMNS + j.
var<private> PRODUCT_sums: array<SumFragment, SUBGROUP_FRAGMENTS>;

fn PRODUCT_stage_left(slot: u32, row: u32, value: f32) {
    PRODUCT_staged_left[slot * TILE_ROWS + row] = half_of(value);
}

fn PRODUCT_stage_left_quad(slot: u32, row_quad: u32, values: vec4<f32>) {
    for (var c = 0u; c < 4u; c++) {
        PRODUCT_staged_left[slot * TILE_ROWS + 4u * row_quad + c] = half_of(values[c]);
    }
}

fn PRODUCT_stage_right(slot: u32, column: u32, value: f32) {
    PRODUCT_staged_right[slot * TILE_COLUMNS + column] = half_of(value);
}

fn PRODUCT_stage_right_quad(slot: u32, column_quad: u32, values: vec4<f32>) {
    for (var c = 0u; c < 4u; c++) {
        PRODUCT_staged_right[slot * TILE_COLUMNS + 4u * column_quad + c] = half_of(values[c]);
    }
}

fn PRODUCT_clear_block() {
    for (var f = 0u; f < SUBGROUP_FRAGMENTS; f++) {
        PRODUCT_sums[f] = SumFragment();
    }
}

// PRODUCT_sums += the staged slice in buffer `half`, FRAGMENT of its k at a time.
fn PRODUCT_multiply_slice(t: u32, half: u32) {
    let subgroup = t / SUBGROUP_SIZE;
    let row = (subgroup / SUBGROUP_COLUMNS) * FRAGMENT * FRAGMENT_ROWS;
    let column = (subgroup % SUBGROUP_COLUMNS) * FRAGMENT * FRAGMENT_COLUMNS;
    for (var k = half * DEPTH; k < half * DEPTH + DEPTH; k += FRAGMENT) {
        var right: array<RightFragment, FRAGMENT_COLUMNS>;
        for (var j = 0u; j < FRAGMENT_COLUMNS; j++) {
            right[j] = coopLoadT<RightFragment>(&PRODUCT_staged_right[k * TILE_COLUMNS + column + j * FRAGMENT], TILE_COLUMNS);
        }
        for (var i = 0u; i < FRAGMENT_ROWS; i++) {
            let left = coopLoad<LeftFragment>(&PRODUCT_staged_left[k * TILE_ROWS + row + i * FRAGMENT], TILE_ROWS);
            for (var j = 0u; j < FRAGMENT_COLUMNS; j++) {
                let f = i * FRAGMENT_COLUMNS + j;
                PRODUCT_sums[f] = coopMultiplyAdd(left, right[j], PRODUCT_sums[f]);
            }
        }
    }
}

// Hands this subgroup's fragments to the including file's epilogue, one fragment at a time
// through workgroup memory (a fragment's layout across invocations is the adapter's secret).
// Every invocation of the workgroup must call it (it has barriers).
fn PRODUCT_write_tile(t: u32, row0: u32, column0: u32) {
    let subgroup = t / SUBGROUP_SIZE;
    let lane = t % SUBGROUP_SIZE;
    let row = row0 + (subgroup / SUBGROUP_COLUMNS) * FRAGMENT * FRAGMENT_ROWS;
    let column = column0 + (subgroup % SUBGROUP_COLUMNS) * FRAGMENT * FRAGMENT_COLUMNS;
    let spill = subgroup * FRAGMENT * FRAGMENT;
    for (var f = 0u; f < SUBGROUP_FRAGMENTS; f++) {
        coopStoreT(PRODUCT_sums[f], &PRODUCT_spilled[spill], FRAGMENT);
        workgroupBarrier();
        for (var e = lane; e < FRAGMENT * FRAGMENT; e += SUBGROUP_SIZE) {
            PRODUCT_write_value(
                row + (f / FRAGMENT_COLUMNS) * FRAGMENT + e / FRAGMENT,
                column + (f % FRAGMENT_COLUMNS) * FRAGMENT + e % FRAGMENT,
                PRODUCT_spilled[spill + e],
            );
        }
        workgroupBarrier();
    }
}
